"""The drainer: delivers the spool, then exits. Detached locally, in-process in CI and ``flush``.

Guarantees, each one a failure seen in another CLI's telemetry:

- one at a time per user and app (``DrainerLock``); a second one exits at once;
- bounded: each request by its timeout, the whole run by ``--max-runtime`` (a watchdog ends
  the process, which also frees the lock);
- exits when the spool is empty, and never retries an endpoint while the breaker is open;
- deletes a record only after the backend accepted it (at-least-once); a record whose span
  was accepted but whose metrics were not is retried for its metrics only;
- never writes to a terminal: it is started with every standard stream on ``/dev/null`` and
  records what it did in the delivery log.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._files import append_line
from ..handoff import spool
from ..paths import Paths
from . import convert
from .breaker import DeliveryState
from .lock import DrainerLock
from .transport import OK, REJECT, RETRY, TOO_LARGE, Outcome, make_transport

DEFAULT_MAX_RUNTIME_S = 60.0
BATCH_SIZE = 256


@dataclass
class DrainReport:
    """What one drain did."""

    delivered: int = 0
    dropped: int = 0
    remaining: int = 0
    locked_out: bool = False
    breaker_open: bool = False
    last_outcome: Outcome | None = None
    errors: list[str] = field(default_factory=list)


def _log(paths: Paths, **entry: Any) -> None:
    try:
        append_line(paths.delivery_log, json.dumps({"t": round(time.time(), 3), **entry}).encode())
    except OSError:
        pass


def _load(entry: spool.SpoolEntry) -> dict[str, Any] | None:
    try:
        with open(entry.path, "rb") as handle:
            return convert.validate(json.loads(handle.read()))
    except (OSError, ValueError):
        return None


def drain(
    paths: Paths,
    *,
    endpoint: str | None,
    protocol: str,
    deadline: float,
    respect_breaker: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> DrainReport:
    """Deliver spooled records until the spool is empty, delivery fails, or ``deadline``."""
    report = DrainReport()
    lock = DrainerLock(paths.lock_file)
    if not lock.acquire():
        report.locked_out = True
        return report
    try:
        state = DeliveryState.load(paths)
        if respect_breaker and state.is_open():
            report.breaker_open = True
            report.remaining = spool.count(paths)
            return report
        report.dropped += spool.enforce_caps(paths)
        transport = make_transport(endpoint, protocol)
        total = spool.count(paths)
        batch_size = BATCH_SIZE
        while time.time() < deadline:
            batch = spool.entries(paths)[:batch_size]
            if not batch:
                break
            loaded: list[tuple[spool.SpoolEntry, dict[str, Any]]] = []
            for entry in batch:
                record = _load(entry)
                if record is None:
                    if spool.remove(entry.path):
                        spool.add_drops(paths, 1)
                        report.dropped += 1
                else:
                    loaded.append((entry, record))
            if not loaded:
                continue
            outcome = _deliver_batch(paths, transport, loaded, state, deadline, report)
            report.last_outcome = outcome
            if outcome.kind == TOO_LARGE and batch_size > 1:
                batch_size = max(1, batch_size // 4)
                continue
            if outcome.kind == RETRY:
                state.record_failure(outcome.error, outcome.retry_after_s)
                state.save(paths)
                report.errors.append(outcome.error)
                break
            if progress is not None:
                progress(report.delivered, total)
        report.remaining = spool.count(paths)
        return report
    finally:
        lock.release()


def _deliver_batch(
    paths: Paths,
    transport: Any,
    loaded: list[tuple[spool.SpoolEntry, dict[str, Any]]],
    state: DeliveryState,
    deadline: float,
    report: DrainReport,
) -> Outcome:
    """Send one batch's spans, then its metrics; delete the records once both are accepted."""
    pending = [(e, r) for e, r in loaded if not e.traces_done]
    if pending:
        spans = [span for _, record in pending for span in convert.to_spans(record)]
        outcome = transport.send_traces(spans, timeout=max(0.05, deadline - time.time()))
        _log(
            paths,
            signal="traces",
            records=len(pending),
            outcome=outcome.kind,
            status=outcome.status,
            error=outcome.error,
            rejected=outcome.rejected,
            latency_ms=round(outcome.latency_ms, 1),
        )
        if outcome.kind in (RETRY, TOO_LARGE):
            return outcome
        if outcome.kind == REJECT:
            return _drop(paths, loaded, report, outcome)
        if outcome.rejected:
            spool.add_drops(paths, outcome.rejected)
            report.dropped += outcome.rejected
        loaded = [(spool.mark_traces_done(e) if not e.traces_done else e, r) for e, r in loaded]

    end_ns = time.time_ns()
    start_ns = state.metrics_cursor_ns or min(r["start_ns"] for _, r in loaded)
    start_ns = min(start_ns, end_ns - 1)
    metrics = convert.to_metrics((r for _, r in loaded), start_ns, end_ns)
    outcome = transport.send_metrics(metrics, timeout=max(0.05, deadline - time.time()))
    _log(
        paths,
        signal="metrics",
        records=len(loaded),
        outcome=outcome.kind,
        status=outcome.status,
        error=outcome.error,
        rejected=outcome.rejected,
        latency_ms=round(outcome.latency_ms, 1),
    )
    if outcome.kind in (RETRY, TOO_LARGE):
        return outcome
    if outcome.kind == REJECT:
        return _drop(paths, loaded, report, outcome)
    for entry, _ in loaded:
        spool.remove(entry.path)
    report.delivered += len(loaded)
    state.metrics_cursor_ns = end_ns
    state.record_success()
    state.save(paths)
    return outcome


def _drop(
    paths: Paths,
    loaded: list[tuple[spool.SpoolEntry, dict[str, Any]]],
    report: DrainReport,
    outcome: Outcome,
) -> Outcome:
    """The backend refused the data itself (HTTP 400): retrying cannot help; count and drop."""
    dropped = sum(1 for entry, _ in loaded if spool.remove(entry.path))
    spool.add_drops(paths, dropped)
    report.dropped += dropped
    return Outcome(OK, outcome.status, error=outcome.error, latency_ms=outcome.latency_ms)


def _watchdog(seconds: float) -> None:
    """End this process after ``seconds`` whatever it is doing (frees the lock too)."""
    timer = threading.Timer(seconds, os._exit, args=(3,))
    timer.daemon = True
    timer.start()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the detached drainer (``python -m otel_cli_telemetry.delivery.drainer``)."""
    parser = argparse.ArgumentParser(prog="otel-cli-telemetry-drainer")
    parser.add_argument("--app", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--endpoint", default=None)
    parser.add_argument("--protocol", default=None)
    parser.add_argument("--max-runtime", type=float, default=DEFAULT_MAX_RUNTIME_S)
    args = parser.parse_args(argv)
    _watchdog(args.max_runtime)
    from ..config import resolve_endpoint, resolve_protocol

    paths = Paths(args.state_dir)
    try:
        drain(
            paths,
            endpoint=resolve_endpoint(args.endpoint, os.environ),
            protocol=args.protocol or resolve_protocol(os.environ),
            deadline=time.time() + max(1.0, args.max_runtime - 2.0),
        )
    except Exception as exc:  # a drainer has no one to tell but its log
        _log(paths, signal="drainer", outcome="crash", error=f"{type(exc).__name__}: {exc}"[:200])
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
