"""App-declared metrics: counters and histograms whose points ride on the command's record.

Instruments may be created at module level, before ``init()``; points recorded while no
command is being captured (telemetry off, or outside any command) are discarded. Point
attributes must be declared fields (the privacy gate drops others).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ._internal import debug, internal_errors
from .capture import session
from .capture.record import MetricPoints
from .schema import MetricSpec

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/")


def _valid_name(name: object) -> bool:
    """OpenTelemetry's instrument-name rule: a letter, then letters, digits, ``_.-/``."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 255
        and name[0].isascii()
        and name[0].isalpha()
        and set(name) <= _NAME_CHARS
    )


MAX_POINTS_PER_METRIC = 1000

_registry: dict[str, MetricSpec] = {}


def registered() -> tuple[MetricSpec, ...]:
    """Every instrument created in this process, for ``schema``."""
    return tuple(_registry.values())


class _Instrument:
    kind = ""

    def __init__(self, name: str, unit: str = "", description: str = "") -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self.valid = _valid_name(name)
        if self.valid:
            _registry.setdefault(name, MetricSpec(name, self.kind, unit, description))
        else:
            debug("invalid metric name %r: its points are discarded", name)

    def _record(self, value: float, attributes: Mapping[str, Any] | None) -> None:
        with internal_errors(f"{self.kind} {self.name}"):
            started = time.perf_counter_ns()
            record = session.current()
            if record is None or not self.valid:
                return
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                debug("metric %s: non-numeric value discarded", self.name)
                return
            points = record.metrics.get(self.name)
            if points is None:
                points = record.metrics[self.name] = MetricPoints(
                    self.name, self.kind, self.unit, self.description
                )
            if len(points.points) < MAX_POINTS_PER_METRIC:
                points.points.append((value, dict(attributes or {})))
            record.overhead_ns += time.perf_counter_ns() - started


class Counter(_Instrument):
    """A monotonic sum; ``add`` ignores negative values."""

    kind = "counter"

    def add(self, value: float, attributes: Mapping[str, Any] | None = None) -> None:
        """Add ``value`` (>= 0) for this command."""
        if isinstance(value, (int, float)) and value < 0:
            debug("counter %s: negative value discarded", self.name)
            return
        self._record(value, attributes)


class Histogram(_Instrument):
    """A distribution of values (durations, sizes)."""

    kind = "histogram"

    def record(self, value: float, attributes: Mapping[str, Any] | None = None) -> None:
        """Record one value for this command."""
        self._record(value, attributes)
