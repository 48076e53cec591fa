"""Hand-off: where a finished, redacted record goes, without ever waiting on the network
locally.

In this order: printed in debug mode, appended to the app's ``<APP>_TELEMETRY_LOG`` file,
and, when consent allows sending: appended to the local history, and with an endpoint
written to the spool. Locally a detached drainer is started if none runs and the breaker is
closed; in CI the spool is drained in-process within the CI budget (no later run will drain
it). The record arrives as plain data (``pipeline.run`` built and redacted it); nothing here
knows how it was captured.
"""

from __future__ import annotations

import sys

from .._files import append_line
from .._internal import internal_errors
from .._jsonlite import dumps
from ..config import Settings
from . import local_log, spool

TYPE_CHECKING = False  # typing costs a process that has not loaded it ~40 M instructions
if TYPE_CHECKING:
    from typing import Any


def claim_drops(settings: Settings) -> int:
    """Drops to report on the record about to be stored (0 unless it will be spooled).

    Claimed only when the record goes to the spool; :func:`store` gives them back if it
    cannot be spooled after all, so the next record reports them.
    """
    if settings.endpoint is None:
        return 0
    return spool.claim_drops(settings.paths)


def store(data: dict[str, Any], settings: Settings, *, carried_drops: int, urgent: bool) -> None:
    """Write one record everywhere it belongs, then make sure it will be delivered.

    ``urgent``: the user interrupted the command (Ctrl-C) and wants out now, so CI skips
    its in-process delivery (a later run or the drainer delivers).
    """
    line = dumps(data, sort_keys=True).encode()
    if settings.debug:
        with internal_errors("debug print"):
            sys.stderr.write(f"[{settings.app} telemetry debug, not sent] {line.decode()}\n")
            sys.stderr.flush()
    if settings.log_path:
        with internal_errors("telemetry log"):
            append_line(settings.log_path, line)
    if not settings.send:
        return
    with internal_errors("history"):
        local_log.append(settings.paths, line)
    if settings.endpoint is None:
        return
    if not spool.write(settings.paths, line):
        spool.add_drops(settings.paths, carried_drops)  # not reported after all: the next will
        return
    if settings.ci and not urgent:
        from ..delivery.inprocess import deliver_within

        deliver_within(settings, settings.ci_budget_s)
        return
    from . import spawn

    spawn.start_drainer_if_needed(settings)


def at_exit() -> None:
    """Interpreter exit: collect drainers this process started that have already exited."""
    if "otel_cli_telemetry.handoff.spawn" in sys.modules:
        from . import spawn

        spawn.reap_children()
