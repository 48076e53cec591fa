"""Hand-off: where a finished record goes, without ever waiting on the network locally.

``capture -> privacy -> hand-off``: the record is built, redacted, then (in this order)
printed in debug mode, appended to the app's ``<APP>_TELEMETRY_LOG`` file, and, when consent
allows sending: appended to the local history, and with an endpoint written to the spool.
Locally a detached drainer is started if none runs and the breaker is closed; in CI the
spool is drained in-process within the CI budget (no later run will drain it).
"""

from __future__ import annotations

import json
import sys
import time

from .._files import append_line
from .._internal import debug, internal_errors
from ..capture import payload, session
from ..capture.exits import INTERRUPTED
from ..capture.record import CommandRecord
from ..config import Settings
from ..gate.state import installation_id, read_installation_id
from ..privacy.allowlist import redact_record
from ..privacy.scrub import default_scrubber
from . import local_log, spool


def hand_off(
    record: CommandRecord,
    settings: Settings,
    exit_code: int,
    error_type: str | None,
    end_ns: int,
    started_ns: int,
) -> None:
    """Build, redact and store one finished record."""
    paths = settings.paths
    if settings.send and session.sink is None:
        install_id = installation_id(paths)
    else:
        install_id = read_installation_id(paths) or ""
    data = payload.build(record, settings, exit_code, error_type, end_ns, install_id)
    # Drops are reported by the next record that will be delivered: claimed only when this
    # one goes to the spool, and given back below if it cannot be spooled after all.
    dropped = 0
    if settings.send and session.sink is None and settings.endpoint is not None:
        dropped = spool.claim_drops(paths)
        if dropped:
            data["attributes"]["cli.telemetry.dropped"] = dropped
    scrubber = default_scrubber()
    dropped_keys = redact_record(data, settings.schema, scrubber.scrub)
    if dropped_keys:
        debug("%d undeclared or unstorable attribute(s) dropped", dropped_keys)
    overhead_ns = record.overhead_ns + (time.perf_counter_ns() - started_ns)
    data["attributes"]["cli.telemetry.overhead_ms"] = round(overhead_ns / 1e6, 3)
    line = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()

    if session.sink is not None:
        session.sink(data)
        return
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
        local_log.append(paths, line)
    if settings.endpoint is None:
        return
    if not spool.write(paths, line):
        spool.add_drops(paths, dropped)  # not reported after all: the next record will
        return
    if settings.ci and error_type != INTERRUPTED:  # after Ctrl-C the user wants out now
        from ..delivery.inprocess import deliver_within

        deliver_within(settings, settings.ci_budget_s)
        return
    from . import spawn

    spawn.start_drainer_if_needed(settings)
