"""One command's record: everything captured between its start and its end.

The record is plain data: W3C ids, times in ns since the epoch, the command path, option
names, declared attributes, phases (child spans) and metric points. It becomes a dict in
the versioned spool format (:data:`RECORD_VERSION`) only at the end, where the privacy
layer filters and scrubs it. No OpenTelemetry import: the drainer builds SDK objects later.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

#: Version of the spool/record format; the drainer refuses (and counts) other versions.
RECORD_VERSION = 1

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


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


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace id, parent span id) from a W3C ``traceparent`` value; None if absent/invalid."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if not match or match.group(1) == "0" * 32 or match.group(2) == "0" * 16:
        return None
    return match.group(1), match.group(2)


@dataclass
class Phase:
    """A named part of the command, exported as a child span."""

    name: str
    span_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int = 0
    error_type: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricPoints:
    """Points recorded on one metric during the command."""

    name: str
    kind: str  # "counter" | "histogram"
    unit: str
    description: str
    points: list[tuple[float, dict[str, Any]]] = field(default_factory=list)


@dataclass
class CommandRecord:
    """The mutable record of the command that is running."""

    kind: str  # "process" (implicit, argparse/generic), "click", "typer", "command"
    start_ns: int = field(default_factory=time.time_ns)
    trace_id: str = field(default_factory=new_trace_id)
    span_id: str = field(default_factory=new_span_id)
    parent_span_id: str = ""
    command_path: tuple[str, ...] = ()
    chained: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    attributes: dict[str, Any] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    phase_stack: list[Phase] = field(default_factory=list)
    metrics: dict[str, MetricPoints] = field(default_factory=dict)
    usage_error: bool = False
    exit_hint: int | None = None  # an exit code seen before the end (ctx.exit, sys.exit)
    error_hint: str | None = None  # error.type of an exception seen leaving a command
    overhead_ns: int = 0
    finished: bool = False

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
