"""The per-process telemetry session: settings, and the one record being captured.

After ``init()`` an implicit *process* record is open; it serves argparse CLIs and code that
records metrics before a command begins. A framework boundary (click/typer ``main``, the
generic :func:`otel_cli_telemetry.command`) opens a command record that adopts what the
process record collected; each such record ends with its boundary. A process record still
open at interpreter exit ends there (see :mod:`.process`).

Capture ends at a finished record: what happens to it next is the business of the stages
below (:mod:`otel_cli_telemetry.pipeline` connects them through :data:`on_finish` and
:data:`on_exit`), so nothing here imports privacy, hand-off or delivery.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._internal import debug, internal_errors
from . import exits
from .record import CommandRecord, parse_parent, process_start_ns, sample

if TYPE_CHECKING:
    from ..config import Settings

settings: Settings | None = None
#: Set by ``otel_cli_telemetry.testing``: records go here instead of to files and network.
sink: Callable[[dict[str, Any]], None] | None = None
#: Who set ``settings``: "init" (the app) or "instrumentor" (``opentelemetry-instrument``).
#: An app's own ``init()`` replaces the instrumentor's settings: it knows its fields.
settings_source = "init"
active: CommandRecord | None = None
#: Records this process emitted, by kind; the process record is emitted only if no
#: framework record was.
emitted_framework_records = 0
#: Wall-clock ns when this module was imported (during the package's import): the earliest
#: point the SDK sees, used where the OS does not say when the process started.
imported_at_ns = time.time_ns()
#: Whether a record already started at the process start (only the first one does).
_started_at_process_start = False
#: Takes each finished record down the data path: ``(record, settings, exit_code,
#: error_type, end_ns, started_ns)``. Set by ``pipeline.connect()`` before capture starts.
on_finish: Callable[[CommandRecord, Settings, int, str | None, int, int], None] | None = None
#: Work the later stages do when the interpreter exits (reaping drainers this process started).
on_exit: Callable[[], None] | None = None
#: Offered the root command of a click/typer app whose command line may name the injected
#: ``telemetry`` subcommand; set by ``init()`` (the admin side builds the subcommand).
inject_root_command: Callable[[Any], None] | None = None


def capturing() -> bool:
    """Whether records are being built in this process."""
    return settings is not None and settings.capture


def _new_record(kind: str) -> CommandRecord:
    """A record in the caller's trace (``TRACEPARENT``) if any, with the sampler's decision."""
    record = CommandRecord(kind=kind)
    parent = parse_parent(os.environ.get("TRACEPARENT"))
    parent_sampled = None
    if parent:
        record.trace_id, record.parent_span_id, parent_sampled = parent
    if settings is not None:
        record.sampled = sample(
            settings.sampler, settings.sampler_ratio, record.trace_id, parent_sampled
        )
    return record


def open_process_record() -> None:
    """Open the implicit record at init (replaces nothing if one is open).

    The process's first record starts when the process did (see
    :func:`.record.process_start_ns`); under ``otel_cli_telemetry.testing`` the process is
    the test runner, so records start when they are opened.
    """
    global active, _started_at_process_start
    if capturing() and active is None:
        active = _new_record("process")
        if not _started_at_process_start and sink is None:
            _started_at_process_start = True
            active.start_ns = process_start_ns(imported_at_ns)
        _enter_context(active)


def _enter_context(record: CommandRecord) -> None:
    """The record's span becomes the app's current OpenTelemetry span context."""
    open_context(record, record.trace_id, record.span_id, record.sampled)


_OTEL_CONTEXT = "otel_cli_telemetry.capture.otel_context"
_otel_hook_registered = False


def open_context(holder: Any, trace_id: str, span_id: str, sampled: bool) -> None:
    """Make a record's or phase's span the app's current OpenTelemetry span context.

    Only if the app uses OpenTelemetry: with ``opentelemetry.trace`` imported, now; else a
    post-import hook (nothing is imported until it fires) does it for whatever is open when
    the app imports it. See :mod:`.otel_context`.
    """
    global _otel_hook_registered
    with internal_errors("OpenTelemetry context"):
        if "opentelemetry.trace" in sys.modules:
            from . import otel_context

            otel_context.enter(holder, trace_id, span_id, sampled)
        elif not _otel_hook_registered:
            _otel_hook_registered = True
            from .patching import when_imported

            when_imported("opentelemetry.trace", _attach_open)


def _attach_open(module: Any) -> None:
    """``opentelemetry.trace`` was just imported: attach the open record, then its phases."""
    with internal_errors("OpenTelemetry context (on import)"):
        record = active
        if record is None or record.finished:
            return
        from . import otel_context

        otel_context.enter(record, record.trace_id, record.span_id, record.sampled)
        for phase in record.phase_stack:
            otel_context.enter(phase, record.trace_id, phase.span_id, record.sampled)


def close_context(holder: Any) -> None:
    """Undo :func:`open_context` for ``holder`` (nothing to do if nothing was attached)."""
    module = sys.modules.get(_OTEL_CONTEXT)
    if module is not None:
        with internal_errors("OpenTelemetry context end"):
            module.leave(holder)


def begin(kind: str) -> CommandRecord | None:
    """Open a framework record; None if not capturing or a framework record is already open.

    Nested boundaries (a typer app built on click, a generic ``command()`` around a click
    ``main``) therefore yield one record, owned by the outermost.
    """
    global active
    if not capturing():
        return None
    if active is not None and active.kind != "process":
        return None
    record = _new_record(kind)
    if active is not None:
        record.adopt(active)
        record.trace_id, record.parent_span_id = active.trace_id, active.parent_span_id
        record.sampled = active.sampled
        record.start_ns = min(record.start_ns, active.start_ns)
    active = record
    _enter_context(record)
    return record


def current() -> CommandRecord | None:
    """The record that attributes, phases and metric points go to now."""
    return active if capturing() else None


def finish(record: CommandRecord, exit_code: int, error_type: str | None) -> None:
    """End ``record`` and hand it off (once); the caller wraps this in ``internal_errors``."""
    global active, emitted_framework_records
    if record.finished or settings is None:
        return
    if record.pid != os.getpid():
        # A forked or daemonized child returning through the command's end or its exit
        # hook: the record belongs to the parent, which ends it; a second copy would carry
        # the same trace and span ids.
        record.finished = True
        return
    started = time.perf_counter_ns()
    record.finished = True
    if active is record:
        active = None
    if record.kind != "process":
        emitted_framework_records += 1
    end_ns = time.time_ns()
    for phase in reversed(record.phase_stack):  # phases left open by an exit inside them
        phase.end_ns = end_ns
        phase.error_type = phase.error_type or error_type
        close_context(phase)
    record.phase_stack.clear()
    close_context(record)
    if exit_code != 0 and error_type in (None, exits.EXIT) and record.error_hint:
        error_type = record.error_hint  # the framework caught it, then exited
    if exit_code != 0 and error_type is None:
        error_type = exits.EXIT
    if record.usage_error and exit_code != 0:
        error_type = exits.USAGE_ERROR

    if on_finish is None:
        debug("record ended before pipeline.connect(): not handed off")
        return
    on_finish(record, settings, exit_code, error_type, end_ns, started)


def finish_process_record(exit_code: int, error_type: str | None) -> None:
    """End the implicit record at interpreter exit, unless a framework record replaced it."""
    record = active
    if record is None or record.kind != "process":
        return
    if emitted_framework_records and not (record.command_path or record.phases or record.metrics):
        record.finished = True
        debug("process record dropped: the framework's command records cover this run")
        return
    finish(record, exit_code, error_type)


def _forget_after_fork() -> None:
    """In a forked child: the open record is the parent's; this process records nothing
    into it (metric points and phases of the child are not the command's)."""
    global active
    if active is not None and active.pid != os.getpid():
        active = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def add_overhead(ns: int) -> None:
    """Charge ``ns`` of SDK time to the open record (``cli_telemetry.sdk.overhead_ms``)."""
    if active is not None:
        active.overhead_ns += ns


def reset_for_tests() -> None:
    """Forget the session (``otel_cli_telemetry.testing`` uses it between tests)."""
    global settings, active, emitted_framework_records, settings_source, on_finish, on_exit
    global _started_at_process_start
    module = sys.modules.get(_OTEL_CONTEXT)
    if module is not None:
        module.reset()
    _started_at_process_start = False
    settings = None
    on_finish = on_exit = None
    settings_source = "init"
    active = None
    emitted_framework_records = 0


def interactive() -> bool:
    """Whether stdin and stdout are terminals (``process.interactive``)."""
    from .environment import is_interactive

    return is_interactive(sys.stdin, sys.stdout)


def as_attributes(record: CommandRecord) -> dict[str, Any]:
    """The framework-level attributes captured so far (tests and debugging)."""
    return {
        "cli_telemetry.command": record.command_name(),
        "cli_telemetry.flags": sorted(record.flags),
    }
