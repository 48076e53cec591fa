"""The drain loop against the real receiver, in-process: at-least-once, the traces-accepted
marker, drops (400, partial success, 413, corrupt files), the breaker, and no spinning."""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path

import pytest

from otel_cli_telemetry.delivery import breaker as breaker_module
from otel_cli_telemetry.delivery import drainer
from otel_cli_telemetry.delivery.breaker import DeliveryState, breaker_open
from otel_cli_telemetry.delivery.lock import DrainerLock
from otel_cli_telemetry.handoff import spool
from otel_cli_telemetry.paths import Paths
from test_delivery_support import call_within, record_socket_timeouts
from test_spool import record_line

from otlp_receiver import OtlpHttpReceiver, SilentServer, refused_endpoint


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(str(tmp_path / "state"))


def fill(paths: Paths, n: int, dropped: int = 0) -> list[str]:
    """Spool ``n`` records; their span ids."""
    for i in range(n):
        assert spool.write(paths, record_line(i, dropped=dropped))
    return [f"{i + 1:016x}" for i in range(n)]


def run(
    paths: Paths, endpoint: str | None = None, seconds: float = 10, **kw: object
) -> drainer.DrainReport:
    return drainer.drain(
        paths, endpoint=endpoint, protocol="http/protobuf", deadline=time.time() + seconds, **kw
    )  # type: ignore[arg-type]


def test_delivers_everything_then_deletes(paths: Paths) -> None:
    ids = fill(paths, 5)
    with OtlpHttpReceiver() as rx:
        report = run(paths, rx.endpoint)
        assert sorted(s["span_id"] for s in rx.spans()) == ids
        assert len(rx.points("cli_telemetry.command.duration")) >= 1
    assert (report.delivered, report.remaining, report.stopped) == (5, 0, drainer.EMPTY)
    assert spool.count(paths) == 0
    state = DeliveryState.load(paths)
    assert state.failures == 0
    assert state.last_success > 0
    assert state.metrics_cursor_ns > 0


def test_nothing_is_deleted_until_accepted(paths: Paths) -> None:
    fill(paths, 3)
    dead = refused_endpoint()
    report = run(paths, dead)
    assert (report.delivered, report.remaining, report.stopped) == (0, 3, drainer.FAILED)
    assert breaker_open(paths)
    # the breaker holds the next drain back...
    assert run(paths, dead).breaker_open
    # ...but not flush's (respect_breaker=False), and success closes it
    with OtlpHttpReceiver() as rx:
        report = run(paths, rx.endpoint, respect_breaker=False)
        assert len(rx.spans()) == 3
    assert report.delivered == 3
    assert not breaker_open(paths)


def test_traces_accepted_marker_avoids_duplicate_spans(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spans accepted, metrics refused: the retry sends only the metrics."""
    ids = fill(paths, 4)
    with OtlpHttpReceiver() as rx:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", rx.traces_url)
        monkeypatch.setenv(
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", refused_endpoint() + "/v1/metrics"
        )
        report = run(paths)
        assert report.remaining == 4
        assert report.delivered == 0
        assert all(e.traces_done for e in spool.entries(paths))
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", rx.metrics_url)
        report = run(paths, respect_breaker=False)
        assert report.delivered == 4
        assert sorted(s["span_id"] for s in rx.spans()) == ids, "each span exactly once"
        assert sum(p["count"] for p in rx.points("cli_telemetry.command.duration")) == 4
    assert spool.count(paths) == 0


@pytest.mark.parametrize("status", [401, 403, 404])
def test_auth_and_path_errors_keep_the_data(paths: Paths, status: int) -> None:
    fill(paths, 2)
    with OtlpHttpReceiver() as rx:
        rx.set_mode("status", status=status)
        report = run(paths, rx.endpoint)
    assert report.remaining == 2
    assert report.dropped == 0
    assert spool.pending_drops(paths) == 0
    assert breaker_open(paths)


def test_400_drops_the_batch_and_counts_it(paths: Paths) -> None:
    fill(paths, 3, dropped=2)  # each also reported 2 earlier drops: those are handed on
    with OtlpHttpReceiver() as rx:
        rx.set_mode("status", status=400)
        report = run(paths, rx.endpoint)
    assert report.dropped == 3
    assert report.remaining == 0
    assert spool.pending_drops(paths) == 3 + 3 * 2
    assert not breaker_open(paths), "a rejection is not an outage"


def test_partial_success_counts_drops(paths: Paths) -> None:
    fill(paths, 3)
    with OtlpHttpReceiver() as rx:
        rx.set_mode("partial_success", rejected=1)
        report = run(paths, rx.endpoint)
    # Counted in records: one span refused (one record), then the only metric point (the
    # three commands' durations, aggregated into one histogram point) refused: every
    # record lost something, and none is counted twice.
    assert report.delivered == 3
    assert report.dropped == 3
    assert spool.pending_drops(paths) == 3


def test_413_splits_the_batch_then_drops_a_single_record_without_spinning(paths: Paths) -> None:
    fill(paths, 8)
    with OtlpHttpReceiver() as rx:
        rx.set_mode("status", status=413)
        report = run(paths, rx.endpoint, seconds=30)
        sizes = [r.items for r in rx.requests if r.signal == "traces"]
    assert report.stopped == drainer.EMPTY, "ended by an empty spool, not by the deadline"
    # halving 8 records down to single ones sends at most 8 + 4 + 2 + 1 batches: a record the
    # backend never takes was not resent until the deadline
    assert len(sizes) <= 15, sizes
    assert sizes[0] == 8
    assert min(sizes) == 1
    assert report.dropped == 8
    assert spool.count(paths) == 0
    assert spool.pending_drops(paths) == 8


def test_corrupt_files_are_dropped_and_counted(paths: Paths) -> None:
    ids = fill(paths, 2)
    folder = Path(paths.spool_dir)
    (folder / "00000000000000000001-1-aaaaaa.json").write_bytes(b"{not json")
    (folder / "00000000000000000002-1-bbbbbb.json").write_bytes(
        json.dumps({"v": 999, "attributes": {"cli_telemetry.sdk.dropped": 4}}).encode()
    )
    (folder / "00000000000000000003-1-cccccc.json").write_bytes(b"\xff" * 10)
    with OtlpHttpReceiver() as rx:
        report = run(paths, rx.endpoint)
        assert sorted(s["span_id"] for s in rx.spans()) == ids
    assert report.dropped == 3
    assert report.delivered == 2
    assert spool.pending_drops(paths) == 3 + 4  # plus the count the foreign record carried


@pytest.mark.swallows_internal_errors
def test_undeletable_records_end_the_run_instead_of_looping(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accepted but impossible to delete: resending would flood the backend with duplicates."""
    fill(paths, 2)
    monkeypatch.setattr(spool, "remove", lambda path: False)
    with OtlpHttpReceiver() as rx:
        report = run(paths, rx.endpoint, seconds=20)
        assert len([r for r in rx.requests if r.signal == "traces"]) == 1
    assert report.stopped == drainer.STUCK


def test_unreadable_and_undeletable_records_do_not_spin(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(paths, 1)
    Path(spool.entries(paths)[0].path).write_bytes(b"garbage")
    monkeypatch.setattr(spool, "remove", lambda path: False)
    Path(spool.quarantine_dir(paths)).write_text("a file: nothing can be moved aside either")
    report = run(paths, refused_endpoint(), seconds=20)
    assert report.stopped == drainer.STUCK, "ended as stuck, not by spinning to the deadline"


def test_a_silent_endpoint_is_bounded_by_the_deadline(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the longest request timeout (10 s), the run's 1 s deadline still bounds the wait
    on an endpoint that never answers: the one request's socket never waits past it."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "10000")
    waits = record_socket_timeouts(monkeypatch)
    fill(paths, 2)
    with SilentServer() as silent:
        report = call_within(60, run, paths, silent.endpoint, seconds=1.0)
        assert silent.connections == 1, "one request, not retried"
    assert report.cut_short, "the request timeout was cut to the deadline"
    assert waits, "no socket wait recorded"
    assert max(waits) <= 1.0, waits
    assert report.remaining == 2
    assert breaker_open(paths)


def test_one_drain_at_a_time(paths: Paths) -> None:
    fill(paths, 1)
    holder = DrainerLock(paths.lock_file)
    assert holder.acquire()
    try:
        report = run(paths, refused_endpoint())
        assert report.locked_out
        assert spool.count(paths) == 1
    finally:
        holder.release()


def test_a_broken_exporter_setup_opens_the_breaker(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Otherwise every command would start a drainer that fails the same way."""
    fill(paths, 1)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(Path(paths.root) / "missing-ca.pem"))
    report = run(paths, "https://localhost:1")
    assert report.stopped == drainer.FAILED
    assert "cannot set up the exporter" in report.errors[0]
    assert breaker_open(paths)
    assert spool.count(paths) == 1


def test_no_endpoint_keeps_everything(paths: Paths) -> None:
    fill(paths, 1)
    report = run(paths, None)
    assert report.remaining == 1
    assert report.errors == ["no endpoint configured"]


# -- the breaker --------------------------------------------------------------------------


def test_backoff_grows_is_capped_and_resets() -> None:
    state = DeliveryState()
    delays = []
    for _ in range(12):
        before = time.time()
        state.record_failure("down")
        delays.append(state.open_until - before)
    base = breaker_module.BASE_DELAY_S
    assert base * 0.8 <= delays[0] <= base * 1.2 + 1
    assert base * 2 * 0.8 <= delays[1] <= base * 2 * 1.2 + 1
    assert all(b > a * 1.3 for a, b in itertools.pairwise(delays[:7]))
    assert max(delays) <= breaker_module.MAX_DELAY_S * 1.2 + 1
    state.failures = 5000  # 2 ** 4999 must not overflow
    state.record_failure("down")
    assert state.is_open()
    state.record_success()
    assert (state.failures, state.open_until, state.is_open()) == (0, 0.0, False)
    state.record_failure("down again")
    assert state.open_until - time.time() <= base * 1.2 + 1


def test_retry_after_is_honoured_by_the_breaker(paths: Paths) -> None:
    fill(paths, 1)
    with OtlpHttpReceiver() as rx:
        rx.set_mode("status", status=503, retry_after="600")
        run(paths, rx.endpoint)
    state = DeliveryState.load(paths)
    assert 590 <= state.open_until - time.time() <= 600
    assert state.last_error == "HTTP 503"


def test_a_breaker_date_from_a_clock_gone_back_does_not_block_for_months(paths: Paths) -> None:
    state = DeliveryState()
    state.open_until = time.time() + 365 * 24 * 3600
    state.save(paths)
    assert not breaker_open(paths)
    assert not DeliveryState.load(paths).is_open()


def test_corrupt_breaker_file_reads_as_closed(paths: Paths) -> None:
    os.makedirs(paths.root, exist_ok=True)
    Path(paths.breaker_file).write_text("{oops")
    assert not breaker_open(paths)
    assert DeliveryState.load(paths).failures == 0


def test_the_breaker_belongs_to_the_endpoint_that_failed(paths: Paths) -> None:
    """Fixing a wrong endpoint must not wait out the old one's backoff."""
    fill(paths, 1)
    dead = refused_endpoint()
    run(paths, dead)
    assert breaker_open(paths, dead)
    assert breaker_open(paths)  # "open for some endpoint": status shows it
    with OtlpHttpReceiver() as rx:
        assert not breaker_open(paths, rx.endpoint)
        assert run(paths, dead).breaker_open
        report = run(paths, rx.endpoint)
        assert report.delivered == 1
    assert DeliveryState.load(paths).failures == 0


def test_grpc_delivery_and_a_quiet_failure(
    paths: Paths, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Over gRPC too; and the SDK exporter's failure logs never reach the terminal."""
    import logging

    from otlp_receiver import OtlpGrpcReceiver

    ids = fill(paths, 2)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")
    logging.getLogger().addHandler(handler := logging.StreamHandler())
    try:
        with OtlpGrpcReceiver() as rx:
            rx.set_mode("status", status=503)
            report = drainer.drain(
                paths, endpoint=rx.endpoint, protocol="grpc", deadline=time.time() + 10
            )
            assert report.stopped == drainer.FAILED
            assert report.remaining == 2
            rx.set_mode("ok")
            report = drainer.drain(
                paths,
                endpoint=rx.endpoint,
                protocol="grpc",
                deadline=time.time() + 10,
                respect_breaker=False,
            )
            assert report.delivered == 2
            assert sorted(s["span_id"] for s in rx.spans()) == ids
    finally:
        logging.getLogger().removeHandler(handler)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_the_delivery_log_is_bounded(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drainer, "LOG_MAX_BYTES", 2000)
    for n in range(200):
        drainer._log(paths, signal="traces", outcome="ok", n=n)
    log = Path(paths.delivery_log)
    assert log.stat().st_size <= 2000 + 200
    assert Path(f"{log}.1").exists()
    assert not Path(f"{log}.2").exists()


def previous_release_record() -> bytes:
    """A spool record as the previous release wrote it: the same record format
    (``RECORD_VERSION``), the built-in attributes under their old ``cli.*`` names."""
    return json.dumps(
        {
            "v": 1,
            "app": "spoolapp",
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "span_id": "b7ad6b7169203331",
            "parent_span_id": None,
            "name": "spoolapp stage new",
            "start_ns": 1_700_000_000_000_000_000,
            "end_ns": 1_700_000_000_250_000_000,
            "status": "UNSET",
            "sampled": True,
            "attributes": {
                "process.executable.name": "spoolapp",
                "process.exit.code": 0,
                "process.pid": 4242,
                "cli.command": "stage new",
                "cli.flags": ["--force"],
                "cli.interactive": False,
                "cli.ci": True,
                "cli.ci.provider": "github_actions",
                "cli.agent": "claude_code",
                "cli.telemetry.overhead_ms": 1.25,
                "cli.telemetry.dropped": 2,
            },
            "resource": {
                "service.name": "spoolapp",
                "service.version": "1.0.0",
                "cli.installation.id": "7b0c0a52-0000-4000-8000-000000000000",
                "service.instance.id": "7b0c0a52-0000-4000-8000-000000000000",
                "cli.telemetry.schema_version": "2.d13059d5",
            },
            "phases": [],
            "metrics": [],
        }
    ).encode()


def test_a_record_spooled_by_the_previous_release_is_delivered_under_current_names(
    paths: Paths,
) -> None:
    assert spool.write(paths, previous_release_record())
    assert spool.drops_in(json.loads(previous_release_record())) == 2  # old name still read
    with OtlpHttpReceiver() as rx:
        report = run(paths, rx.endpoint)
        (span,) = rx.spans()
        points = rx.points("cli_telemetry.command.duration")
        assert not rx.points("cli.command.duration")
    assert report.delivered == 1
    assert span["attributes"] == {
        "process.executable.name": "spoolapp",
        "process.exit.code": 0,
        "process.pid": 4242,
        "cli_telemetry.command": "stage new",
        "cli_telemetry.flags": ["--force"],
        "process.interactive": False,
        "cli_telemetry.ci.detected": True,
        "cli_telemetry.ci.provider": "github_actions",
        "cli_telemetry.agent": "claude_code",
        "cli_telemetry.sdk.overhead_ms": 1.25,
        "cli_telemetry.sdk.dropped": 2,
    }
    resource = span["resource"]
    assert resource["cli_telemetry.schema.version"] == "2.d13059d5"
    assert resource["service.instance.id"] == "7b0c0a52-0000-4000-8000-000000000000"
    assert not [k for k in resource if k.startswith("cli.")]
    assert [p["attributes"]["cli_telemetry.command"] for p in points] == ["stage new"]
