"""The data path of one finished command, in order: capture -> privacy -> hand-off.

:func:`run` is the only place that calls each stage, and the only code that knows their
order; the stages do not import each other upward (capture never imports privacy, hand-off
or delivery; hand-off never imports capture). :func:`connect` plugs :func:`run` into the
capture session before any record can end.

::

    record (capture) --payload.build--> data --redact_record--> data (privacy)
        --handoff.store--> debug print, log file, history, spool --> drainer / CI delivery
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ._internal import debug
from .capture import payload, session
from .capture.exits import INTERRUPTED
from .capture.record import CommandRecord
from .config import Settings
from .gate.state import installation_id, read_installation_id
from .privacy.allowlist import redact_record
from .privacy.scrub import default_scrubber

#: ``service.instance.id`` in a debug or log-file record made before any run created the id.
NO_INSTALLATION_ID = "not-created-yet"


def connect(settings: Settings) -> None:
    """Route this process's finished records through :func:`run`, and import now what the
    end of a record needs.

    CPython forgets that a KeyboardInterrupt went unhandled (and exits 1 instead of dying
    by SIGINT, status 130) if any module is imported after it, even from an ``atexit``
    handler. The process record of an argparse CLI ends in ``atexit``, so nothing may be
    imported there. Ending a record needs these modules anyway: importing them at init
    moves the cost, it does not add to it.
    """
    from . import handoff

    session.on_finish = run
    session.on_exit = handoff.at_exit
    default_scrubber()
    payload.machine_resource()
    if settings.endpoint is not None:  # local-only never spawns
        from .handoff import spawn  # noqa: F401

        if sys.platform != "win32":
            import fcntl  # noqa: F401


def run(
    record: CommandRecord,
    settings: Settings,
    exit_code: int,
    error_type: str | None,
    end_ns: int,
    started_ns: int,
) -> None:
    """Build, redact and hand off one finished record (the caller swallows our errors)."""
    from . import handoff

    sending = settings.send and session.sink is None
    paths = settings.paths
    # A run that records nothing to send (debug print, log file) never creates the id: it
    # shows the existing one, or says there is none yet rather than an empty string.
    install_id = (
        installation_id(paths) if sending else (read_installation_id(paths) or NO_INSTALLATION_ID)
    )
    data: dict[str, Any] = payload.build(
        record, settings, exit_code, error_type, end_ns, install_id
    )

    carried = handoff.claim_drops(settings) if sending else 0
    if carried:
        data["attributes"]["cli_telemetry.sdk.dropped"] = carried

    dropped_keys = redact_record(data, settings.schema, default_scrubber().scrub)
    if dropped_keys:
        debug("%d undeclared or unstorable attribute(s) dropped", dropped_keys)

    overhead_ns = record.overhead_ns + (time.perf_counter_ns() - started_ns)
    data["attributes"]["cli_telemetry.sdk.overhead_ms"] = round(overhead_ns / 1e6, 3)

    if session.sink is not None:  # otel_cli_telemetry.testing captures in memory
        session.sink(data)
        return
    handoff.store(data, settings, carried_drops=carried, urgent=error_type == INTERRUPTED)
