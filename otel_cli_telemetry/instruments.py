"""App-declared metrics: counters and histograms whose points ride on the command's record.

Instruments may be created at module level, before ``init()``; points recorded while no
command is being captured (telemetry off, or outside any command) are discarded. Point
attributes must be declared fields (the privacy gate drops others).

Creating an instrument declares it: a name outside the names grammar (or that looks like a
secret), a unit that is not a unit, or a description that is not a str raises ValueError or
TypeError there, as a programming error (see :mod:`otel_cli_telemetry.privacy.kinds`).
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .schema import MetricSpec

#: Imported only by a run that records; until then points have nowhere to go (see
#: ``otel_cli_telemetry._session``), and an off run imports nothing for its instruments.
_SESSION = "otel_cli_telemetry.capture.session"


def debug(message: str, *args: Any) -> None:
    """``_internal.debug``, imported when there is something to say."""
    from ._internal import debug as say

    say(message, *args)


MAX_POINTS_PER_METRIC = 1000


def switched_off() -> bool:
    """Whether ``init()`` already found this run switched off by the environment alone."""
    package = sys.modules.get("otel_cli_telemetry")
    return getattr(package, "_deferred", None) is not None

#: name -> (kind, unit, description) of every valid instrument created in this process.
_registry: dict[str, tuple[str, str, str]] = {}


def registered() -> tuple[MetricSpec, ...]:
    """Every instrument created in this process, for ``schema``."""
    from .schema import MetricSpec

    return tuple(MetricSpec(name, *spec) for name, spec in _registry.items())


class _Instrument:
    kind = ""

    def __init__(self, name: str, unit: str = "", description: str = "") -> None:
        # Declaring is where a bad name, unit or description is a programming error; a run
        # that the environment switched off records nothing and skips the check (it would
        # cost the privacy modules' import), as init() skips its own checks then.
        if not switched_off():
            from .privacy.kinds import check_static_name, unit_problem

            check_static_name(f"{self.kind} name", name)
            problem = unit_problem(unit)
            if problem:
                shown = "(not shown)" if "secret" in problem else repr(unit)[:48]
                raise ValueError(f"{self.kind} {name!r}: unit {shown} is not allowed: {problem}")
            if not isinstance(description, str):
                raise TypeError(f"{self.kind} {name!r}: description must be a str")
        self.name = name
        self.unit = unit
        self.description = description
        self.valid = True
        _registry.setdefault(name, (self.kind, unit, description))

    def _record(self, value: float, attributes: Mapping[str, Any] | None) -> None:
        session = sys.modules.get(_SESSION)
        if session is None:
            return
        from ._internal import internal_errors
        from .capture.record import MetricPoints

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
