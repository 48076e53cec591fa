"""One command's record: everything captured between its start and its end.

The record is plain data: W3C ids, times in ns since the epoch, the command path, option
names, declared attributes, phases (child spans) and metric points. It becomes a dict in
the versioned spool format (``schema.RECORD_VERSION``) only at the end, where the privacy
layer filters and scrubs it. No OpenTelemetry import: the drainer builds SDK objects later.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

_HEX = frozenset("0123456789abcdef")


def new_span_id() -> str:
    """A random non-zero 64-bit span id as 16 hex digits."""
    while True:
        value = os.urandom(8).hex()
        if value != "0" * 16:
            return value


def new_trace_id() -> str:
    """A random non-zero 128-bit trace id as 32 hex digits."""
    while True:
        value = os.urandom(16).hex()
        if value != "0" * 32:
            return value


def parse_parent(value: str | None) -> tuple[str, str, bool] | None:
    """(trace id, parent span id, sampled) from a W3C ``traceparent``; None if absent/invalid.

    ``sampled`` is bit 0 of the trace flags: the parent was recorded (``-01``) or not (``-00``).
    """
    if not value:
        return None
    parts = value.strip().lower().split("-")
    if len(parts) != 4 or parts[0] != "00" or [len(p) for p in parts[1:]] != [32, 16, 2]:
        return None
    if not all(c in _HEX for c in "".join(parts[1:])):
        return None
    if parts[1] == "0" * 32 or parts[2] == "0" * 16:
        return None
    return parts[1], parts[2], bool(int(parts[3], 16) & 1)


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace id, parent span id) from a W3C ``traceparent`` value; None if absent/invalid."""
    parent = parse_parent(value)
    return None if parent is None else (parent[0], parent[1])


_process_start_ns: int | None = None


def _linux_process_start_ns() -> int | None:
    """The wall-clock time this process started, from ``/proc/self/stat`` (Linux).

    Field 22 (``starttime``) is in clock ticks since boot, on the clock that
    ``CLOCK_BOOTTIME`` reads; the process's age is their difference (10 ms resolution).
    """
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return None
    try:
        with open("/proc/self/stat", "rb") as handle:
            stat = handle.read()
        ticks = int(stat[stat.rindex(b")") + 2 :].split()[19])  # fields after "(comm)"
        hertz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    age_s = time.clock_gettime(boottime) - ticks / hertz
    if not 0 <= age_s < 365 * 86400:
        return None
    return time.time_ns() - int(age_s * 1e9)


def process_start_ns(earliest_seen_ns: int) -> int:
    """When this process started: from the OS where it says (Linux), else ``earliest_seen_ns``
    (the earliest point the SDK saw: the import of the package). Computed once.

    Every framework's command span starts here, so durations compare across click, typer,
    argparse and plain scripts: interpreter start-up and imports are part of the command.
    """
    global _process_start_ns
    if _process_start_ns is None:
        found = _linux_process_start_ns() if sys.platform.startswith("linux") else None
        _process_start_ns = (
            found if found is not None and found <= earliest_seen_ns else earliest_seen_ns
        )
    return _process_start_ns


#: ``TraceIdRatioBased`` compares the trace id's low 64 bits with ``ratio * 2**64``, as the
#: OpenTelemetry Python SDK does, so a trace is kept or dropped alike by every such process.
_TRACE_ID_LIMIT = (1 << 64) - 1


def sample(sampler: str, ratio: float, trace_id: str, parent_sampled: bool | None) -> bool:
    """The sampling decision for a new command span, per the ``OTEL_TRACES_SAMPLER`` names.

    ``sampler`` is one of ``always_on``, ``always_off``, ``traceidratio`` and their
    ``parentbased_`` forms (:func:`otel_cli_telemetry.config.resolve_sampler` resolves it);
    ``parent_sampled`` is the ``TRACEPARENT`` flag, or None for a root span.
    """
    if sampler.startswith("parentbased_"):
        if parent_sampled is not None:
            return parent_sampled
        sampler = sampler[len("parentbased_") :]
    if sampler == "always_off":
        return False
    if sampler == "traceidratio":
        bound = round(ratio * (_TRACE_ID_LIMIT + 1))
        return int(trace_id, 16) & _TRACE_ID_LIMIT < bound
    return True


class Phase:
    """A named part of the command, exported as a child span."""

    __slots__ = (
        "attributes",
        "end_ns",
        "error_type",
        "name",
        "parent_span_id",
        "span_id",
        "start_ns",
    )

    def __init__(
        self,
        name: str,
        span_id: str,
        parent_span_id: str,
        start_ns: int,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.start_ns = start_ns
        self.end_ns = 0
        self.error_type: str | None = None
        self.attributes: dict[str, Any] = attributes or {}


class MetricPoints:
    """Points recorded on one metric during the command."""

    __slots__ = ("description", "kind", "name", "points", "unit")

    def __init__(self, name: str, kind: str, unit: str, description: str) -> None:
        self.name = name
        self.kind = kind  # "counter" | "histogram"
        self.unit = unit
        self.description = description
        self.points: list[tuple[float, dict[str, Any]]] = []


class CommandRecord:
    """The mutable record of the command that is running."""

    __slots__ = (
        "attributes",
        "chained",
        "command_path",
        "error_hint",
        "exit_hint",
        "finished",
        "flags",
        "kind",
        "metrics",
        "overhead_ns",
        "parent_span_id",
        "phase_stack",
        "phases",
        "pid",
        "sampled",
        "span_id",
        "start_ns",
        "trace_id",
        "usage_error",
    )

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "process" (implicit: argparse/generic), "click", "typer", "command"
        self.pid = os.getpid()  # a forked child inherits the record but never ends it
        self.start_ns = time.time_ns()
        self.trace_id = new_trace_id()
        self.span_id = new_span_id()
        self.parent_span_id = ""
        #: Whether the command's spans are exported (the sampler's decision, made at the
        #: start). An unsampled record is still kept in the local history, and its metrics
        #: are still sent: sampling is about traces.
        self.sampled = True
        self.command_path: tuple[str, ...] = ()
        self.chained: list[str] = []
        self.flags: set[str] = set()
        self.attributes: dict[str, Any] = {}
        self.phases: list[Phase] = []
        self.phase_stack: list[Phase] = []
        self.metrics: dict[str, MetricPoints] = {}
        self.usage_error = False
        self.exit_hint: int | None = None  # an exit code seen before the end (ctx.exit)
        self.error_hint: str | None = None  # error.type of an exception seen leaving a command
        self.overhead_ns = 0
        self.finished = False

    def adopt(self, other: CommandRecord) -> None:
        """Take over what an implicit process record collected before this command began."""
        self.flags |= other.flags
        self.attributes = {**other.attributes, **self.attributes}
        self.phases = other.phases + self.phases
        for phase in other.phases:
            if phase.parent_span_id == other.span_id:
                phase.parent_span_id = self.span_id
        for name, points in other.metrics.items():
            mine = self.metrics.setdefault(name, points)
            if mine is not points:
                mine.points.extend(points.points)
        self.overhead_ns += other.overhead_ns

    def set_command_path(self, path: tuple[str, ...]) -> None:
        """Record the command path below the program; deeper paths replace shallower ones."""
        if len(path) >= len(self.command_path):
            self.command_path = path

    def note_chained(self, name: str) -> None:
        """A chained subcommand (click ``chain=True``) ran."""
        if name not in self.chained:
            self.chained.append(name)

    def command_name(self) -> str:
        """``deploy``, ``stage new``, ``build+upload`` (chained); empty for the root command."""
        if len(self.chained) > 1:
            parent = " ".join(self.command_path[:-1])
            joined = "+".join(self.chained)
            return f"{parent} {joined}".strip()
        return " ".join(self.command_path)

    def current_parent(self) -> str:
        """The span id a new phase hangs from: the innermost open phase, or the command."""
        return self.phase_stack[-1].span_id if self.phase_stack else self.span_id
