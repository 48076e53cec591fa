"""The drainer: delivers the spool, serves the burst of commands that follows, then exits.

Detached locally (started by the first command of a session), in-process in CI and ``flush``.
The detached drainer stays a short while after the spool went empty (``--linger``, default
:data:`DEFAULT_LINGER_S`), watching the spool directory with one ``stat`` every
:data:`DEFAULT_POLL_S`, and delivers each new record as it comes: a session of commands
pays for one interpreter start and one import of the encoder, not one per command, and a
record reaches the backend within about half a second. Every command meanwhile finds the
lock held and starts nothing.

Guarantees, each one a failure seen in another CLI's telemetry:

- one at a time per user and app (``DrainerLock``; the spawning CLI takes the lock for the
  drainer it starts, see ``handoff.spawn``); a second one exits at once. A drainer that
  lets go of the lock looks at the spool once more and goes on if a record arrived while it
  was finishing (the CLI that wrote it saw the lock held and started nothing);
- bounded: each request by its timeout, the whole run by ``--max-runtime`` (a watchdog ends
  the process, which also frees the lock);
- exits once the spool stayed empty for the linger time, when telemetry is disabled
  (``disable`` writes the state file and deletes the spool), at its first failed delivery
  (the breaker opens), and never retries an endpoint while the breaker is open;
  it never spins: a pass that makes no progress (a record that can be neither loaded nor
  deleted, an accepted record that cannot be deleted) ends the run;
- deletes a record only after the backend accepted it (at-least-once); a record whose span
  was accepted but whose metrics were not is retried for its metrics only; a batch sent but
  not confirmed is retried as the same request (same records, same metrics window);
- counts in records: a refused or undeliverable record is one drop, an OTLP partial success
  is converted from items to records (see :func:`_count_refused`);
- never blocks on what it finds in the spool: files that are not deliverable records are
  quarantined (``spool.quarantine``);
- its own deadline is not an endpoint failure: a request cut short by it, after the
  endpoint accepted something in this run, leaves the breaker closed;
- a drainer that crashes, cannot even build its exporter, or hangs until its watchdog ends
  it opens the breaker, so a broken setup costs one process per backoff period, not one per
  command;
- never writes to a terminal: it is started with every standard stream on ``/dev/null``,
  closes any other descriptor it inherited, leaves the CLI's working directory, and records
  what it did in the delivery log (rotated, bounded).
"""

from __future__ import annotations

import _thread
import math
import os
import sys
import time
from collections.abc import Callable

from .._files import append_line
from .._jsonlite import dumps, loads
from ..handoff import spool
from ..paths import Paths
from .breaker import DeliveryState
from .lock import DrainerLock

TYPE_CHECKING = False  # typing costs a process that has not loaded it ~40 M instructions
if TYPE_CHECKING:  # the transport imports the OpenTelemetry SDK: only when delivering
    from typing import Any

    from .transport import Outcome

DEFAULT_MAX_RUNTIME_S = 60.0
#: Overrides ``--max-runtime``'s default (seconds): for tests, and for slow links.
MAX_RUNTIME_ENV = "OTEL_CLI_TELEMETRY_DRAINER_MAX_RUNTIME"
BATCH_SIZE = 256
#: How long the detached drainer stays after the spool went empty, waiting for the next
#: command's record (seconds without a new record); see :func:`drain`'s ``linger_s``.
DEFAULT_LINGER_S = 20.0
#: Overrides :data:`DEFAULT_LINGER_S` (0 turns lingering off: one drain per start).
LINGER_ENV = "OTEL_CLI_TELEMETRY_DRAINER_LINGER"
#: How often a lingering drainer looks at the spool (seconds): the added delivery latency.
DEFAULT_POLL_S = 0.5
#: The delivery log is rotated once past this size (one ``.1`` kept).
LOG_MAX_BYTES = 1024 * 1024

# Why a pass over the spool ended.
EMPTY, FAILED, DEADLINE, BREAKER, STUCK = "empty", "failed", "deadline", "breaker", "stuck"


class DrainReport:
    """What one drain did. (A plain class: ``dataclasses`` costs a drainer ~15 ms.)"""

    def __init__(self) -> None:
        self.delivered = 0
        self.dropped = 0
        self.remaining = 0
        self.locked_out = False
        self.breaker_open = False
        self.last_outcome: Outcome | None = None
        self.errors: list[str] = []
        self.stopped = ""
        #: Requests the endpoint accepted in this run (it is alive and answering).
        self.accepted = 0
        #: The last request's timeout was cut to what was left before the deadline.
        self.cut_short = False
        self.served_bursts = 0  # times a lingering drainer woke up for new records


def _log(paths: Paths, **entry: Any) -> None:
    """One line in the delivery log; never raises (a drainer has no one else to tell)."""
    path = paths.delivery_log
    try:
        if os.path.getsize(path) > LOG_MAX_BYTES:
            os.replace(path, path + ".1")
    except OSError:
        pass
    try:
        append_line(path, dumps({"t": round(time.time(), 3), **entry}).encode())
    except (OSError, ValueError, TypeError):
        pass


def drain(
    paths: Paths,
    *,
    endpoint: str | None,
    protocol: str,
    deadline: float,
    respect_breaker: bool = True,
    progress: Callable[[int, int], None] | None = None,
    lock: DrainerLock | None = None,
    linger_s: float = 0.0,
    poll_s: float = DEFAULT_POLL_S,
) -> DrainReport:
    """Deliver spooled records until the spool is empty, delivery fails, or ``deadline``.

    ``endpoint`` is an explicit base URL (``init(endpoint=...)``) or None: the transport
    then reads the standard ``OTEL_EXPORTER_OTLP_*`` variables. ``lock`` is a lock already
    held for us (the detached drainer's, taken by the CLI that started it); otherwise the
    lock is taken here, and if someone holds it the report says ``locked_out``.

    ``linger_s`` > 0 (the detached drainer): once the spool is empty, keep the lock and
    watch the spool for that long (one ``stat`` of its directory every ``poll_s``), deliver
    what arrives, and leave only after ``linger_s`` without a new record, so a session of
    commands pays for one drainer start. Every command in the meantime finds the lock held
    and starts nothing. It also leaves as soon as telemetry is disabled (``disable`` writes
    the state file and deletes the spool) and before ``deadline``.
    """
    report = DrainReport()
    transport: list[Any] = []  # built once, on first need
    first = True
    while True:
        if lock is None:
            lock = DrainerLock(paths.lock_file)
            if not lock.acquire():
                report.locked_out = first
                break
        try:
            while True:
                report.stopped = _drain_locked(
                    paths,
                    transport,
                    endpoint,
                    protocol,
                    deadline,
                    respect_breaker,
                    progress,
                    report,
                )
                if report.stopped != EMPTY or linger_s <= 0:
                    break
                if not _wait_for_records(paths, deadline, linger_s, poll_s):
                    break
                report.served_bursts += 1
        finally:
            lock.release()
            lock = None
        first = False
        # A record spooled while we were finishing found the lock held and started nothing:
        # it is ours to deliver. (Its writer spooled it before trying the lock; we look after
        # letting go of it; so one of us always sees the other.)
        if report.stopped != EMPTY or time.time() >= deadline or not spool.count(paths):
            break
    report.remaining = spool.count(paths)
    if transport and hasattr(transport[0], "close"):
        try:
            transport[0].close()
        except Exception:
            pass
    return report


def _mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _wait_for_records(paths: Paths, deadline: float, idle_s: float, poll_s: float) -> bool:
    """Watch the spool until a record arrives (True), or ``idle_s`` pass without one, the
    deadline comes, or telemetry is turned off (False).

    Each poll is one ``stat`` of the spool directory (its mtime changes when a file is
    added, renamed or removed in it) and one of the state file; the directory is listed
    only when its mtime moved.
    """
    spool_seen = _mtime_ns(paths.spool_dir)
    state_seen = _mtime_ns(paths.state_file)
    until = min(deadline, time.time() + idle_s)
    while True:
        now = time.time()
        if now >= until:
            return False
        time.sleep(min(poll_s, until - now))
        state_now = _mtime_ns(paths.state_file)
        if state_now != state_seen:
            state_seen = state_now
            if _telemetry_disabled(paths):
                _log(paths, signal="drainer", outcome="disabled")
                return False
        spool_now = _mtime_ns(paths.spool_dir)
        if spool_now is None:
            return False  # the spool was removed (``disable``, an uninstall)
        if spool_now != spool_seen:
            spool_seen = spool_now
            if spool.count(paths):
                return True


#: ``gate.state.DENIED``: the state file's consent after ``disable`` (delivery reads the
#: file, it does not import the gate; tests/test_drainer_burst.py checks the two agree).
CONSENT_DENIED = "denied"


def _telemetry_disabled(paths: Paths) -> bool:
    """Whether the user turned telemetry off with ``disable`` since we started."""
    from .._files import read_json

    state = read_json(paths.state_file)
    return isinstance(state, dict) and state.get("consent") == CONSENT_DENIED


def _drain_locked(
    paths: Paths,
    transport: list[Any],
    endpoint: str | None,
    protocol: str,
    deadline: float,
    respect_breaker: bool,
    progress: Callable[[int, int], None] | None,
    report: DrainReport,
) -> str:
    """One pass while holding the lock; returns why it ended."""
    from ..config import resolve_endpoint

    key = resolve_endpoint(endpoint, os.environ) or ""  # what the CLI calls its endpoint
    state = DeliveryState.load(paths)
    if respect_breaker and state.is_open(endpoint=key):
        report.breaker_open = True
        return BREAKER
    report.dropped += spool.enforce_caps(paths)
    if not spool.count(paths):
        return EMPTY
    from .transport import RETRY, TOO_LARGE  # the OpenTelemetry SDK: only with work to do

    if not transport and not _build_transport(
        paths, transport, endpoint, protocol, state, report, key
    ):
        return FAILED
    total = report.delivered + spool.count(paths)
    batch_size = BATCH_SIZE
    queue: list[spool.SpoolEntry] = []  # one directory scan serves many batches
    while time.time() < deadline:
        if not queue:
            queue = spool.entries(paths)
            if not queue:
                return EMPTY
        batch, queue = _next_batch(queue, batch_size, state)
        loaded, progress_made = _load_batch(paths, batch, report)
        if not loaded:
            if progress_made:
                continue
            _log(paths, signal="spool", outcome="stuck", error="cannot read or delete records")
            return STUCK
        _remember_batch(paths, state, loaded)
        outcome = _deliver_batch(paths, transport[0], loaded, state, deadline, report)
        report.last_outcome = outcome
        if outcome.kind == TOO_LARGE:
            state.pending_batch = []  # a new composition, smaller batches
            if len(loaded) > 1:
                batch_size = max(1, len(loaded) // 4)
                queue = [entry for entry, _ in loaded] + queue  # again, in smaller batches
                continue
            _drop(paths, loaded, report, outcome)  # one record the backend will never take
            continue
        if outcome.kind == RETRY and _cut_short_by_deadline(outcome, deadline, report):
            # Our own time limit ended the request, not the endpoint (it answered earlier in
            # this run): no breaker; the next drainer sends the same batch again.
            _log(paths, signal="drainer", outcome="deadline", error=outcome.error)
            return DEADLINE
        if outcome.kind == RETRY:
            state.record_failure(outcome.error, outcome.retry_after_s, endpoint=key)
            state.save(paths)
            report.errors.append(outcome.error)
            return FAILED
        if not _all_gone(loaded):  # accepted, yet still there: sending again would loop
            _log(paths, signal="spool", outcome="stuck", error="accepted records not deleted")
            return STUCK
        batch_size = min(BATCH_SIZE, batch_size * 2)  # after a 413 split, grow back
        if progress is not None:
            progress(report.delivered, total)
    return DEADLINE


def _stem(entry: spool.SpoolEntry) -> str:
    """A record's name without its suffix: the same before and after ``mark_traces_done``."""
    name = os.path.basename(entry.path)
    cut = len(spool.TRACES_DONE_SUFFIX if entry.traces_done else spool.SUFFIX)
    return name[:-cut]


def _next_batch(
    queue: list[spool.SpoolEntry], batch_size: int, state: DeliveryState
) -> tuple[list[spool.SpoolEntry], list[spool.SpoolEntry]]:
    """(the next batch, the rest of the queue).

    A batch that was sent but not confirmed (a timeout, a 5xx, a kill) is sent again with
    exactly the records it had, so the retry is the same request: the same spans and the
    same metric points over the same time window, which a backend can recognise as a
    duplicate instead of counting the deltas twice.
    """
    if state.pending_batch:
        wanted = set(state.pending_batch)
        again = [e for e in queue if _stem(e) in wanted]
        if again:
            rest = [e for e in queue if _stem(e) not in wanted]
            return again[:batch_size], again[batch_size:] + rest
        state.pending_batch = []
    return queue[:batch_size], queue[batch_size:]


def _remember_batch(
    paths: Paths, state: DeliveryState, loaded: list[tuple[spool.SpoolEntry, dict[str, Any]]]
) -> None:
    """Persist the composition of the batch about to be sent (see :func:`_next_batch`)."""
    stems = [_stem(entry) for entry, _ in loaded]
    if stems != state.pending_batch:
        state.pending_batch = stems
        state.save(paths)


def _cut_short_by_deadline(outcome: Outcome, deadline: float, report: DrainReport) -> bool:
    """Whether a failed request only ran out of the time this run had left.

    A request without an answer (timeout) whose timeout was cut to the deadline, in a run
    in which the endpoint already accepted something, says nothing against the endpoint.
    A run in which nothing was accepted had its whole time limit: that is a failure.
    """
    return (
        report.cut_short
        and report.accepted > 0
        and outcome.status is None
        and time.time() >= deadline - 0.05
    )


def _send(
    send: Callable[..., Outcome],
    payload: Any,
    transport: Any,
    deadline: float,
    report: DrainReport,
) -> Outcome:
    """One export request, its timeout cut to what is left before ``deadline``."""
    from .transport import OK

    left = max(0.05, deadline - time.time())
    report.cut_short = left < getattr(transport, "timeout", float("inf"))
    outcome = send(payload, timeout=left)
    if outcome.kind == OK:
        report.accepted += 1
    return outcome


def _count_refused(
    paths: Paths,
    report: DrainReport,
    records: list[dict[str, Any]],
    refused: int,
    items: int | None,
    already: int = 0,
    carried: int = 0,
) -> int:
    """Count an OTLP partial success in records; returns the records counted.

    The backend says how many items (spans, data points) it refused, not which: every
    record is counted when all items were refused, else at most one record per refused
    item (never more than the batch holds, ``already`` counted for its other signal). The
    drop counts the batch's spans carried (``carried``) are passed on: one of them may
    have been on a refused span (a count may then be reported twice, never lost).
    """
    if refused <= 0:
        return 0
    hit = len(records) if items is not None and refused >= items else min(refused, len(records))
    hit = max(0, min(hit, len(records) - already))
    spool.add_drops(paths, hit + carried)
    report.dropped += hit
    return hit


def _point_count(metrics: Any) -> int | None:
    """Data points in an export (SDK ``MetricsData``, an OTLP request or its encoded
    bytes); None if unknown."""
    try:
        if isinstance(metrics, bytes):
            from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
                ExportMetricsServiceRequest,
            )

            metrics = ExportMetricsServiceRequest.FromString(metrics)
        total = 0
        for resource_metrics in metrics.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    data = getattr(metric, "data", None)
                    if data is None:  # an OTLP protobuf message: the oneof
                        data = getattr(metric, metric.WhichOneof("data"))
                    total += len(data.data_points)
        return total
    except Exception:
        return None


def _load_batch(
    paths: Paths, batch: list[spool.SpoolEntry], report: DrainReport
) -> tuple[list[tuple[spool.SpoolEntry, dict[str, Any]]], bool]:
    """(the batch's deliverable records, whether any file left the spool). Files that are
    not deliverable records (corrupt, foreign, not regular, too large or deep) are
    quarantined and counted, with any drop count they carried."""
    from . import convert

    loaded: list[tuple[spool.SpoolEntry, dict[str, Any]]] = []
    progress_made = False
    for entry in batch:
        value: Any = None
        try:
            value = spool.load(entry.path)
            loaded.append((entry, convert.validate(value)))
            continue
        except FileNotFoundError:
            progress_made = True  # gone meanwhile (``disable`` deletes the spool)
            continue
        except Exception as exc:  # Unreadable, InvalidRecord, OSError, anything: set aside
            reason = f"{type(exc).__name__}: {exc}"[:200]
        carried = spool.drops_in(value)
        if spool.quarantine(paths, entry.path, carried):
            report.dropped += 1
            progress_made = True
            _log(paths, signal="spool", outcome="quarantined", error=reason)
    return loaded, progress_made


def _build_transport(
    paths: Paths,
    transport: list[Any],
    endpoint: str | None,
    protocol: str,
    state: DeliveryState,
    report: DrainReport,
    key: str,
) -> bool:
    """Make the exporter once per run; on a setup error open the breaker (False)."""
    from .transport import make_transport

    try:
        built = make_transport(endpoint, protocol)
    except Exception as exc:  # bad CA file, grpc extra missing, ...: back off
        error = f"cannot set up the exporter: {type(exc).__name__}: {exc}"[:200]
        _log(paths, signal="drainer", outcome="config_error", error=error)
        state.record_failure(error, endpoint=key)
        state.save(paths)
        report.errors.append(error)
        return False
    if not getattr(built, "configured", True):
        _log(paths, signal="drainer", outcome="no_endpoint")
        report.errors.append("no endpoint configured")
        return False
    transport.append(built)
    return True


def _all_gone(loaded: list[tuple[spool.SpoolEntry, dict[str, Any]]]) -> bool:
    """Whether every record of a delivered batch was deleted (in either of its names)."""
    for entry, _ in loaded:
        cut = len(spool.TRACES_DONE_SUFFIX if entry.traces_done else spool.SUFFIX)
        stem = entry.path[:-cut]
        if os.path.exists(stem + spool.SUFFIX) or os.path.exists(stem + spool.TRACES_DONE_SUFFIX):
            return False
    return True


def _deliver_batch(
    paths: Paths,
    transport: Any,
    loaded: list[tuple[spool.SpoolEntry, dict[str, Any]]],
    state: DeliveryState,
    deadline: float,
    report: DrainReport,
) -> Outcome:
    """Send one batch's spans, then its metrics; delete the records once both are accepted."""
    from .transport import OK, REJECT, RETRY, TOO_LARGE

    # A record the sampler did not keep has no spans to send (its metrics go below).
    pending = [(e, r) for e, r in loaded if not e.traces_done and r.get("sampled") is not False]
    if pending:
        spans = _encode(paths, transport.encode_traces, pending, loaded, report, "traces")
        if not loaded:
            from .transport import Outcome

            return Outcome(OK)
    refused_records = 0
    if pending:
        outcome = _send(transport.send_traces, spans, transport, deadline, report)
        _log_outcome(paths, "traces", len(pending), outcome)
        if outcome.kind in (RETRY, TOO_LARGE):
            return outcome
        if outcome.kind == REJECT:
            return _drop(paths, loaded, report, outcome)
        records = [r for _, r in pending]
        refused_records = _count_refused(
            paths,
            report,
            records,
            outcome.rejected,
            items=sum(1 + len(r.get("phases", [])) for r in records),
            carried=sum(spool.drops_in(r) for r in records) if outcome.rejected else 0,
        )
        loaded[:] = [(spool.mark_traces_done(e), r) for e, r in loaded]

    # The window is fixed by the batch (not by the clock), so a retry sends the same points.
    start_ns = state.metrics_cursor_ns or min(r["start_ns"] for _, r in loaded)
    end_ns = max(start_ns + 1, *(r["end_ns"] for _, r in loaded))
    temporality = _temporality()
    totals = _load_totals(paths) if temporality == "cumulative" else None
    metrics = _encode(
        paths,
        lambda records: transport.encode_metrics(records, start_ns, end_ns, temporality, totals),
        list(loaded),
        loaded,
        report,
        "metrics",
    )
    if not loaded:
        from .transport import Outcome

        return Outcome(OK)
    outcome = _send(transport.send_metrics, metrics, transport, deadline, report)
    _log_outcome(paths, "metrics", len(loaded), outcome)
    if outcome.kind in (RETRY, TOO_LARGE):
        return outcome
    if outcome.kind == REJECT:
        return _drop(paths, loaded, report, outcome)
    _count_refused(
        paths,
        report,
        [r for _, r in loaded],
        outcome.rejected,
        items=_point_count(metrics) if outcome.rejected else None,
        already=refused_records,
    )
    if totals is not None:
        totals.commit()
        totals.save(encode_totals_path(paths))
    for entry, _ in loaded:
        if spool.remove(entry.path):
            report.delivered += 1
    state.metrics_cursor_ns = end_ns
    state.pending_batch = []
    state.record_success()
    state.save(paths)
    return outcome


def _temporality() -> str:
    """Metric temporality for this process (the CLI's environment reaches the drainer)."""
    from .encode import temporality_from

    return temporality_from(os.environ)


def encode_totals_path(paths: Paths) -> str:
    """The cumulative totals file of a state dir (see ``encode.CumulativeTotals``)."""
    return os.path.join(paths.root, "metrics_cumulative.json")


def _load_totals(paths: Paths) -> Any:
    from .encode import CumulativeTotals

    return CumulativeTotals.load(encode_totals_path(paths))


def _encode(
    paths: Paths,
    encoder: Callable[[list[dict[str, Any]]], Any],
    pending: list[tuple[spool.SpoolEntry, dict[str, Any]]],
    loaded: list[tuple[spool.SpoolEntry, dict[str, Any]]],
    report: DrainReport,
    signal: str,
) -> Any:
    """``encoder`` applied to the records of ``pending``. Should that fail (validated
    records, so only a damaged file that validation let through, e.g. a lone surrogate in a
    string), each record is tried alone: the ones that fail are dropped and counted, and
    removed from ``pending`` and ``loaded``; the rest are encoded together."""
    from .transport import OK, Outcome

    try:
        return encoder([r for _, r in pending])
    except Exception:
        pass
    for item in list(pending):
        try:
            encoder([item[1]])
        except Exception as exc:
            _log(paths, signal=signal, outcome="encode_error", error=repr(exc)[:200])
            _drop(paths, [item], report, Outcome(OK))
            pending.remove(item)
            if item in loaded:
                loaded.remove(item)
    return encoder([r for _, r in pending])


def _log_outcome(paths: Paths, signal: str, records: int, outcome: Outcome) -> None:
    _log(
        paths,
        signal=signal,
        records=records,
        outcome=outcome.kind,
        status=outcome.status,
        error=outcome.error,
        rejected=outcome.rejected,
        retry_after_s=outcome.retry_after_s,
        latency_ms=round(outcome.latency_ms, 1),
    )


def _drop(
    paths: Paths,
    loaded: list[tuple[spool.SpoolEntry, dict[str, Any]]],
    report: DrainReport,
    outcome: Outcome,
) -> Outcome:
    """The backend refused the data itself (HTTP 400, or 413 for a single record): retrying
    cannot help. Drop the records and count them, with any drop count they carried."""
    from .transport import OK, Outcome

    dropped = carried = 0
    for entry, record in loaded:
        if spool.remove(entry.path):
            dropped += 1
            value = record.get("attributes", {}).get("cli_telemetry.sdk.dropped", 0)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                carried += value
    spool.add_drops(paths, dropped + carried)
    report.dropped += dropped
    return Outcome(OK, outcome.status, error=outcome.error, latency_ms=outcome.latency_ms)


def _watchdog(seconds: float, on_expiry: Callable[[], None] | None = None) -> None:
    """End this process after ``seconds`` whatever it is doing (frees the lock too).

    ``on_expiry`` runs first (the drainer opens the breaker: something hung that no
    timeout bounds, and the next command must not start another drainer to hang the same
    way); a second timer ends the process a second later should that hang as well.
    Bare threads (``threading`` costs a drainer ~3 ms to import); they never delay an exit.
    """

    def backstop() -> None:
        time.sleep(1.0)
        os._exit(3)

    def expire() -> None:
        time.sleep(seconds)
        _thread.start_new_thread(backstop, ())
        if on_expiry is not None:
            try:
                on_expiry()
            except Exception:
                pass
        os._exit(3)

    _thread.start_new_thread(expire, ())


def _close_inherited_fds(keep: int | None) -> None:
    """Close every descriptor above 2 but ``keep`` (the spawner closes them too; this is
    the backstop for a parent that could not): a pipe we hold open makes its reader wait."""
    top = 65536
    try:
        if keep is not None and keep >= 3:
            os.closerange(3, keep)
            os.closerange(keep + 1, top)
        else:
            os.closerange(3, top)
    except OSError:
        pass


def _seconds_from_env(name: str, default: float, low: float, high: float) -> float:
    """``name``'s value in seconds, within ``[low, high]``; ``default`` if unset or invalid."""
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        return default
    if math.isnan(value):
        return default
    return max(low, min(value, high))


def max_runtime_default() -> float:
    """``--max-runtime``'s default: :data:`MAX_RUNTIME_ENV` if valid, within 1-600 s."""
    return _seconds_from_env(MAX_RUNTIME_ENV, DEFAULT_MAX_RUNTIME_S, 1.0, 600.0)


def linger_default() -> float:
    """How long the detached drainer lingers: :data:`LINGER_ENV` if valid (0-300 s), else
    :data:`DEFAULT_LINGER_S`."""
    return _seconds_from_env(LINGER_ENV, DEFAULT_LINGER_S, 0.0, 300.0)


def _log_cost(paths: Paths, report: DrainReport, started: float) -> None:
    """The drainer's own cost, for ``doctor`` and the benchmarks: CPU time of this whole
    process (interpreter start and imports included), per record delivered."""
    times = os.times()
    cpu_ms = (times.user + times.system) * 1000.0
    records = report.delivered
    _log(
        paths,
        signal="drainer",
        outcome="exit",
        stopped=report.stopped,
        records=records,
        bursts=report.served_bursts + (1 if records else 0),
        cpu_ms=round(cpu_ms, 1),
        cpu_ms_per_record=round(cpu_ms / records, 3) if records else None,
        wall_s=round(time.time() - started, 2),
    )


class _Args:
    """The drainer's command line (what ``handoff.spawn.drainer_argv`` writes)."""

    def __init__(self) -> None:
        self.app = ""
        self.state_dir = ""
        self.endpoint: str | None = None
        self.protocol: str | None = None
        self.max_runtime: float | None = None
        self.lock_fd: int | None = None
        self.linger: float | None = None


def _parse_args(argv: list[str]) -> _Args:
    """``--name value`` pairs; ValueError for anything else. (Not argparse: it costs a
    drainer ~8 ms to import, for a command line only our own spawner writes.)"""
    args = _Args()
    converters: dict[str, Callable[[str], Any]] = {
        "--app": str,
        "--state-dir": str,
        "--endpoint": str,
        "--protocol": str,
        "--max-runtime": float,
        "--lock-fd": int,
        "--linger": float,
    }
    if len(argv) % 2:
        raise ValueError("every option takes a value")
    for name, value in zip(argv[::2], argv[1::2], strict=True):
        convert = converters.get(name)
        if convert is None:
            raise ValueError(f"unknown option {name}")
        setattr(args, name[2:].replace("-", "_"), convert(value))
    if not args.app or not args.state_dir:
        raise ValueError("--app and --state-dir are required")
    return args


def last_run_cost(paths: Paths) -> str | None:
    """The last detached drainer's own account of its cost (for ``doctor``), if any."""
    for name in (paths.delivery_log, paths.delivery_log + ".1"):
        try:
            with open(name, "rb") as handle:
                lines = handle.read().splitlines()
        except OSError:
            continue
        for raw in reversed(lines):
            try:
                entry = loads(raw)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("outcome") == "exit":
                per = entry.get("cpu_ms_per_record")
                each = f", {per} ms per record" if per is not None else ""
                return (
                    f"last drainer: {entry.get('records', 0)} record(s) in "
                    f"{entry.get('wall_s', '?')} s, {entry.get('cpu_ms', '?')} ms CPU in all{each}"
                )
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the detached drainer (``python -m otel_cli_telemetry.delivery.drainer``)."""
    started = time.time()
    try:
        args = _parse_args(sys.argv[1:] if argv is None else argv)
    except ValueError:
        return 2
    if argv is None:  # a real detached run, not a test calling main()
        _close_inherited_fds(args.lock_fd)
        try:
            os.chdir(args.state_dir)  # never keep the user's working directory busy
        except OSError:
            os.chdir(os.path.abspath(os.sep))
        try:
            os.nice(10)
        except (OSError, AttributeError):
            pass
    max_runtime = args.max_runtime if args.max_runtime else max_runtime_default()
    from ..config import resolve_endpoint, resolve_protocol

    paths = Paths(args.state_dir)
    endpoint_key = resolve_endpoint(args.endpoint, os.environ) or ""

    def hung() -> None:
        error = f"drainer still running after its {max_runtime:g} s limit"
        _log(paths, signal="drainer", outcome="watchdog", error=error)
        state = DeliveryState.load(paths)
        state.record_failure(error, endpoint=endpoint_key)
        state.save(paths)

    _watchdog(max_runtime, hung)
    lock = None
    if args.lock_fd is not None:
        lock = DrainerLock(paths.lock_file)
        if not lock.adopt(args.lock_fd):
            lock = None  # not ours after all: try to take it like anyone else
    try:
        report = drain(
            paths,
            endpoint=args.endpoint,
            protocol=args.protocol or resolve_protocol(os.environ),
            deadline=time.time() + max(0.5, max_runtime - 2.0),
            lock=lock,
            linger_s=args.linger if args.linger is not None else linger_default(),
        )
        _log_cost(paths, report, started)
    except Exception as exc:  # a drainer has no one to tell but its log, and the breaker
        error = f"{type(exc).__name__}: {exc}"[:200]
        _log(paths, signal="drainer", outcome="crash", error=error)
        try:
            state = DeliveryState.load(paths)
            state.record_failure(f"drainer crashed: {error}", endpoint=endpoint_key)
            state.save(paths)
        except Exception:
            pass
        return 1
    return 0


if __name__ == "__main__":
    # Leave at once: no interpreter teardown (tens of ms) between letting go of the lock and
    # being gone, so a successor started right after never overlaps with us. Nothing is
    # buffered: the standard streams are /dev/null and the log is written with os.write.
    os._exit(main())
