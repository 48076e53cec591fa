"""Prove the loopback OTLP receivers against the real OpenTelemetry SDK exporters.

The end-to-end tests trust ``tests/otlp_receiver.py`` in place of a collector, so here the
stock ``opentelemetry-exporter-otlp-proto-{http,grpc}`` exporters talk to it: what they send
must decode to the spans and metrics the SDK produced, and every failure mode must make the
exporter report failure (or success) the way it would against a real collector. Exporter
timeouts are kept at 1-2 s so the whole file runs in well under 30 s.
"""

from __future__ import annotations

import gzip
import http.client
import re
import threading
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, cast

import grpc
import pytest
from opentelemetry import metrics as metrics_api
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode

from otlp_receiver import (
    OtlpGrpcReceiver,
    OtlpHttpReceiver,
    ReceiverMode,
    SilentServer,
    decode_spans,
    refused_endpoint,
)

RESOURCE = Resource.create({"service.name": "otlp-receiver-test", "service.version": "1.2.3"})
DELTA: dict[type, AggregationTemporality] = {
    Counter: AggregationTemporality.DELTA,
    Histogram: AggregationTemporality.DELTA,
}
SECRET = "canary-4f1d9b"  # a value a leak scan must be able to find in decompressed bodies


@pytest.fixture
def http_rx() -> Iterator[OtlpHttpReceiver]:
    with OtlpHttpReceiver() as rx:
        yield rx


@pytest.fixture
def grpc_rx() -> Iterator[OtlpGrpcReceiver]:
    with OtlpGrpcReceiver() as rx:
        yield rx


def _finished_spans(*names: str) -> list[ReadableSpan]:
    """Ended SDK spans, for calling ``exporter.export`` directly and reading its result."""
    tracer = TracerProvider(resource=RESOURCE).get_tracer("tests.otlp_receiver")
    spans = []
    for name in names:
        span = tracer.start_span(name)
        span.end()
        spans.append(cast(ReadableSpan, span))  # the SDK's Span is a ReadableSpan
    return spans


def _emit_trace(exporter: SpanExporter, *, batch: bool = False) -> tuple[str, str, str]:
    """Export a parent SERVER span and a child ERROR span; return (trace_id, parent, child)."""
    provider = TracerProvider(resource=RESOURCE)
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("tests.otlp_receiver", "0.9")
    attributes: dict[str, Any] = {
        "cli_telemetry.command": "build",
        "cli.exit_code": 0,
        "cli.duration_s": 1.5,
        "process.interactive": False,
        "cli_telemetry.flags": ["--verbose", "--jobs"],
        "cli.sizes": [1, 2, 3],
        "cli.token": SECRET,
    }
    with tracer.start_as_current_span("cli.invocation", kind=SpanKind.SERVER) as parent:
        parent.set_attributes(attributes)
        with tracer.start_as_current_span("cli.step") as child:
            child.add_event("cache.miss", {"entries": 3})
            child.set_status(Status(StatusCode.ERROR, "step failed"))
    assert provider.force_flush(5_000)
    provider.shutdown()
    ctx, child_ctx = parent.get_span_context(), child.get_span_context()
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", f"{child_ctx.span_id:016x}"


def _assert_trace(rx: OtlpHttpReceiver | OtlpGrpcReceiver, ids: tuple[str, str, str]) -> None:
    trace_id, parent_id, child_id = ids
    spans = {s["name"]: s for s in rx.wait_for_spans(2)}
    parent, child = spans["cli.invocation"], spans["cli.step"]
    assert {parent["trace_id"], child["trace_id"]} == {trace_id}
    assert (parent["span_id"], parent["parent_span_id"]) == (parent_id, "")
    assert (child["span_id"], child["parent_span_id"]) == (child_id, parent_id)
    assert (parent["kind"], parent["kind_name"]) == (2, "SERVER")
    assert (child["kind"], child["kind_name"]) == (1, "INTERNAL")
    assert parent["status_code"] == "UNSET"
    assert (child["status_code"], child["status_message"]) == ("ERROR", "step failed")
    assert parent["attributes"] == {
        "cli_telemetry.command": "build",
        "cli.exit_code": 0,
        "cli.duration_s": 1.5,
        "process.interactive": False,
        "cli_telemetry.flags": ["--verbose", "--jobs"],
        "cli.sizes": [1, 2, 3],
        "cli.token": SECRET,
    }
    assert child["events"][0]["name"] == "cache.miss"
    assert child["events"][0]["attributes"] == {"entries": 3}
    assert parent["resource"]["service.name"] == "otlp-receiver-test"
    assert parent["resource"]["service.version"] == "1.2.3"
    assert parent["resource"]["telemetry.sdk.language"] == "python"
    assert parent["scope_name"] == "tests.otlp_receiver"
    assert parent["scope_version"] == "0.9"
    assert 0 < parent["start_ns"] <= child["start_ns"] <= child["end_ns"] <= parent["end_ns"]
    assert any(SECRET.encode() in body for body in rx.raw_bodies())


# -- OTLP/HTTP happy paths -----------------------------------------------------------------


def test_http_gzip_traces_decode_to_what_the_sdk_produced(http_rx: OtlpHttpReceiver) -> None:
    exporter = HttpSpanExporter(
        endpoint=http_rx.traces_url, compression=Compression.Gzip, timeout=2
    )
    _assert_trace(http_rx, _emit_trace(exporter))
    request = http_rx.requests[0]
    assert request.path == "/v1/traces"
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.headers["content-encoding"] == "gzip"
    assert request.accepted
    assert request.http_status == 200
    assert request.mode == "ok"


def test_http_deflate_batch_processor(http_rx: OtlpHttpReceiver) -> None:
    exporter = HttpSpanExporter(
        endpoint=http_rx.traces_url, compression=Compression.Deflate, timeout=2
    )
    _assert_trace(http_rx, _emit_trace(exporter, batch=True))
    assert len(http_rx.requests) == 1  # the batch processor sent both spans together
    assert http_rx.requests[0].headers["content-encoding"] == "deflate"
    assert http_rx.requests[0].items == 2


def _record_metrics(exporter: MetricExporter) -> tuple[MeterProvider, metrics_api.Histogram]:
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter = provider.get_meter("tests.otlp_receiver", "0.9")
    counter = meter.create_counter("cli.invocations", unit="{invocation}", description="runs")
    histogram = meter.create_histogram(
        "cli.duration",
        unit="ms",
        description="wall time",
        explicit_bucket_boundaries_advisory=[10.0, 100.0, 1000.0],
    )
    counter.add(2, {"cli_telemetry.command": "build"})
    counter.add(1, {"cli_telemetry.command": "build"})
    counter.add(5, {"cli_telemetry.command": "test"})
    for value in (5.0, 50.0, 70.0, 5000.0):
        histogram.record(value, {"cli_telemetry.command": "build"})
    assert provider.force_flush(5_000)
    return provider, histogram


def _assert_metrics(rx: OtlpHttpReceiver | OtlpGrpcReceiver) -> None:
    metrics = {m["name"]: m for m in rx.wait_for_metrics(2)}
    counter, histogram = metrics["cli.invocations"], metrics["cli.duration"]
    assert (counter["type"], counter["temporality"], counter["is_monotonic"]) == (
        "sum",
        "DELTA",
        True,
    )
    assert (counter["unit"], counter["description"]) == ("{invocation}", "runs")
    by_command = {p["attributes"]["cli_telemetry.command"]: p["value"] for p in counter["points"]}
    assert by_command == {"build": 3, "test": 5}
    assert counter["resource"]["service.name"] == "otlp-receiver-test"
    assert counter["scope_name"] == "tests.otlp_receiver"

    assert (histogram["type"], histogram["temporality"], histogram["is_monotonic"]) == (
        "histogram",
        "DELTA",
        None,
    )
    (point,) = histogram["points"]
    assert point["attributes"] == {"cli_telemetry.command": "build"}
    assert point["count"] == 4
    assert point["sum"] == pytest.approx(5125.0)
    assert point["explicit_bounds"] == [10.0, 100.0, 1000.0]
    assert point["bucket_counts"] == [1, 2, 0, 1]
    assert (point["min"], point["max"]) == (5.0, 5000.0)
    assert 0 < point["start_ns"] < point["time_ns"]


def test_http_delta_metrics_counter_and_histogram(http_rx: OtlpHttpReceiver) -> None:
    exporter = HttpMetricExporter(
        endpoint=http_rx.metrics_url,
        compression=Compression.Gzip,
        timeout=2,
        preferred_temporality=DELTA,
    )
    provider, histogram = _record_metrics(exporter)
    try:
        _assert_metrics(http_rx)
        # A second collection carries only what was recorded since the first (delta), and its
        # window starts where the previous one ended.
        histogram.record(7.0, {"cli_telemetry.command": "build"})
        assert provider.force_flush(5_000)
        points = http_rx.wait_for_metrics(
            lambda ms: len([m for m in ms if m["name"] == "cli.duration"]) >= 2
        )
        assert points
        first, second = http_rx.points("cli.duration")
        assert (second["count"], second["sum"], second["bucket_counts"]) == (1, 7.0, [1, 0, 0, 0])
        assert second["start_ns"] == first["time_ns"]
    finally:
        provider.shutdown()
    assert http_rx.requests[0].headers["content-encoding"] == "gzip"


# -- OTLP/gRPC happy paths -----------------------------------------------------------------


def test_grpc_traces(grpc_rx: OtlpGrpcReceiver) -> None:
    exporter = GrpcSpanExporter(
        endpoint=grpc_rx.endpoint, insecure=True, timeout=2, compression=grpc.Compression.Gzip
    )
    _assert_trace(grpc_rx, _emit_trace(exporter))
    request = grpc_rx.requests[0]
    assert request.path == "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    assert request.grpc_code == "OK"
    assert request.headers["user-agent"].startswith("OTel-OTLP-Exporter-Python")


def test_grpc_delta_metrics(grpc_rx: OtlpGrpcReceiver) -> None:
    exporter = GrpcMetricExporter(
        endpoint=grpc_rx.endpoint, insecure=True, timeout=2, preferred_temporality=DELTA
    )
    provider, _ = _record_metrics(exporter)
    try:
        _assert_metrics(grpc_rx)
    finally:
        provider.shutdown()


# -- failure modes against the real exporters ----------------------------------------------


def _export(exporter: SpanExporter, spans: Sequence[ReadableSpan]) -> object:
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


def _retry_waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The backoffs the exporters said they would wait before retrying, in order: both the
    HTTP and the gRPC exporter log "retrying in N.NNs" just before each wait."""
    return [
        float(found.group(1))
        for record in caplog.records
        if (found := re.search(r"retrying in (\d+(?:\.\d+)?)s", record.getMessage()))
    ]


def test_http_503_with_retry_after_past_the_deadline_fails_at_once(
    http_rx: OtlpHttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    http_rx.set_mode("status", status=503, retry_after="30")
    exporter = HttpSpanExporter(endpoint=http_rx.traces_url, timeout=2)
    result = _export(exporter, _finished_spans("a"))
    assert result is SpanExportResult.FAILURE
    assert _retry_waits(caplog) == [], "the exporter does not sleep past its own deadline"
    (request,) = http_rx.requests
    assert (request.http_status, request.accepted, request.mode) == (503, False, "status")
    assert http_rx.spans() == []
    assert [s["name"] for s in http_rx.spans(include_rejected=True)] == ["a"]


def test_http_retry_after_sets_the_backoff(
    http_rx: OtlpHttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    http_rx.set_mode("status", status=503, retry_after="1")
    exporter = HttpSpanExporter(endpoint=http_rx.traces_url, timeout=1.6)
    result = _export(exporter, _finished_spans("a"))
    assert result is SpanExportResult.FAILURE
    # the Retry-After value, not the exponential backoff with jitter, is the one wait; a
    # second wait of 1 s would overrun the 1.6 s deadline
    assert _retry_waits(caplog) == [1.0]
    first, second = http_rx.requests
    assert first.time <= second.time


def test_http_fail_then_ok_is_retried_to_success(http_rx: OtlpHttpReceiver) -> None:
    http_rx.set_mode("fail_then_ok", status=503, failures=2, retry_after="0")
    exporter = HttpSpanExporter(endpoint=http_rx.traces_url, timeout=2)
    result = _export(exporter, _finished_spans("a"))
    assert result is SpanExportResult.SUCCESS
    assert [r.accepted for r in http_rx.requests] == [False, False, True]
    assert [s["name"] for s in http_rx.spans()] == ["a"]


@pytest.mark.parametrize("status", [400, 500])
def test_http_non_retryable_status_fails_without_retry(
    http_rx: OtlpHttpReceiver, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    http_rx.set_mode("status", status=status)
    exporter = HttpSpanExporter(endpoint=http_rx.traces_url, timeout=2)
    result = _export(exporter, _finished_spans("a"))
    assert result is SpanExportResult.FAILURE
    assert _retry_waits(caplog) == []
    assert [r.http_status for r in http_rx.requests] == [status]


def test_http_partial_success_is_returned(http_rx: OtlpHttpReceiver) -> None:
    http_rx.set_mode("partial_success", message="dropped by policy")
    exporter = HttpSpanExporter(endpoint=http_rx.traces_url, timeout=2)
    spans = _finished_spans("a", "b", "c")
    result = _export(exporter, spans)
    # The 1.45.1 HTTP exporter never reads the response body: partial success is SUCCESS.
    assert result is SpanExportResult.SUCCESS
    (request,) = http_rx.requests
    assert (request.accepted, request.items, request.rejected) == (True, 3, 3)

    # The wire answer really carries partial_success (checked with a raw client).
    http_rx.set_mode("partial_success", rejected=1, message="one too many")
    conn = http.client.HTTPConnection("127.0.0.1", http_rx.port, timeout=5)
    conn.request(
        "POST",
        "/v1/traces",
        body=http_rx.requests[0].body,
        headers={"Content-Type": "application/x-protobuf"},
    )
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/x-protobuf"
    answer = trace_service_pb2.ExportTraceServiceResponse.FromString(response.read())
    conn.close()
    assert answer.partial_success.rejected_spans == 1
    assert answer.partial_success.error_message == "one too many"


def test_http_slow_answer(http_rx: OtlpHttpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    http_rx.set_mode("slow", delay=0.3)
    result = _export(HttpSpanExporter(endpoint=http_rx.traces_url, timeout=2), _finished_spans("a"))
    assert result is SpanExportResult.SUCCESS, "the exporter waited for the late answer"
    assert [s["name"] for s in http_rx.spans()] == ["a"]

    # an answer that would come only when the receiver closes: the exporter's own
    # timeout is all that can end the export
    http_rx.set_mode("slow", delay=600)
    result = _export(HttpSpanExporter(endpoint=http_rx.traces_url, timeout=1), _finished_spans("b"))
    assert result is SpanExportResult.FAILURE
    assert _retry_waits(caplog) == [], "the timeout used up the deadline: no retry"


def test_silent_server_makes_http_exporter_time_out() -> None:
    with SilentServer() as silent:
        exporter = HttpSpanExporter(endpoint=f"{silent.endpoint}/v1/traces", timeout=1)
        result = _export(exporter, _finished_spans("a"))  # returns: the timeout ended it
        assert result is SpanExportResult.FAILURE
        assert silent.connections >= 1
        assert silent.bytes_received > 0  # the request went out; no answer came back


def test_silent_server_makes_grpc_exporter_time_out() -> None:
    with SilentServer() as silent:
        exporter = GrpcSpanExporter(endpoint=silent.endpoint, insecure=True, timeout=1)
        result = _export(exporter, _finished_spans("a"))  # returns: the timeout ended it
        assert result is SpanExportResult.FAILURE
        assert silent.connections >= 1


def test_refused_endpoint_fails_http_and_grpc(caplog: pytest.LogCaptureFixture) -> None:
    """Refusals are retried with backoff, and the deadline ends the retries: the backoffs
    the exporter waited add up to no more than its timeout."""
    endpoint = refused_endpoint()
    result = _export(
        HttpSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=1.5), _finished_spans("a")
    )
    assert result is SpanExportResult.FAILURE
    assert sum(_retry_waits(caplog)) <= 1.5
    caplog.clear()
    result = _export(
        GrpcSpanExporter(endpoint=endpoint, insecure=True, timeout=1), _finished_spans("a")
    )
    assert result is SpanExportResult.FAILURE
    assert sum(_retry_waits(caplog)) <= 1.0


def test_grpc_unavailable_with_retry_info_past_the_deadline(
    grpc_rx: OtlpGrpcReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    grpc_rx.set_mode("status", status=503, retry_after="30")
    exporter = GrpcSpanExporter(endpoint=grpc_rx.endpoint, insecure=True, timeout=2)
    result = _export(exporter, _finished_spans("a"))
    assert result is SpanExportResult.FAILURE
    assert _retry_waits(caplog) == [], "the exporter does not sleep past its own deadline"
    assert [r.grpc_code for r in grpc_rx.requests] == ["UNAVAILABLE"]


def test_grpc_fail_then_ok_and_non_retryable(
    grpc_rx: OtlpGrpcReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    grpc_rx.set_mode("fail_then_ok", status=503, failures=2, retry_after="0")
    exporter = GrpcSpanExporter(endpoint=grpc_rx.endpoint, insecure=True, timeout=2)
    result = _export(exporter, _finished_spans("a"))
    assert result is SpanExportResult.SUCCESS
    assert [r.grpc_code for r in grpc_rx.requests] == ["UNAVAILABLE", "UNAVAILABLE", "OK"]

    grpc_rx.clear()
    grpc_rx.set_mode("status", status=400)
    exporter = GrpcSpanExporter(endpoint=grpc_rx.endpoint, insecure=True, timeout=2)
    caplog.clear()
    result = _export(exporter, _finished_spans("b"))
    assert result is SpanExportResult.FAILURE
    assert _retry_waits(caplog) == []
    assert [r.grpc_code for r in grpc_rx.requests] == ["INVALID_ARGUMENT"]


def test_grpc_partial_success_is_returned(grpc_rx: OtlpGrpcReceiver) -> None:
    grpc_rx.set_mode("partial_success", message="dropped by policy")
    exporter = GrpcSpanExporter(endpoint=grpc_rx.endpoint, insecure=True, timeout=2)
    result = _export(exporter, _finished_spans("a", "b"))
    assert result is SpanExportResult.SUCCESS  # the gRPC exporter ignores it as well
    assert grpc_rx.requests[0].rejected == 2

    with grpc.insecure_channel(f"127.0.0.1:{grpc_rx.port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        answer = stub.Export(grpc_rx.requests[0].message, timeout=5)
    assert answer.partial_success.rejected_spans == 2
    assert answer.partial_success.error_message == "dropped by policy"


# -- receiver mechanics (raw HTTP) ---------------------------------------------------------


def _post(
    rx: OtlpHttpReceiver, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=5)
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": "application/x-protobuf", **(headers or {})},
        )
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        conn.close()


def _trace_request_bytes(*names: str) -> bytes:
    return bytes(encode_spans(_finished_spans(*names)).SerializeToString())


def test_raw_deflate_variants_retry_after_header_and_rejections(http_rx: OtlpHttpReceiver) -> None:
    payload = _trace_request_bytes("raw")
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw_body = raw_deflate.compress(payload) + raw_deflate.flush()
    assert _post(http_rx, "/v1/traces", raw_body, {"Content-Encoding": "deflate"})[0] == 200
    assert (
        _post(http_rx, "/v1/traces", gzip.compress(payload), {"Content-Encoding": "gzip"})[0] == 200
    )
    assert [s["name"] for s in http_rx.spans()] == ["raw", "raw"]

    http_rx.set_mode("status", status=429, retry_after="7")
    status, _, response = _post(http_rx, "/v1/traces", payload)
    assert (status, response.getheader("Retry-After")) == (429, "7")

    http_rx.set_mode("ok")
    assert _post(http_rx, "/v1/nope", payload)[0] == 404
    assert _post(http_rx, "/v1/traces", payload, {"Content-Type": "application/json"})[0] == 415
    assert _post(http_rx, "/v1/traces", b"\xff\xff\xff")[0] == 400
    assert _post(http_rx, "/v1/traces", b"junk", {"Content-Encoding": "gzip"})[0] == 400
    assert _post(http_rx, "/v1/traces", payload, {"Content-Encoding": "br"})[0] == 415
    rejected = http_rx.requests[-5:]
    assert all(not r.accepted and r.error for r in rejected)
    assert len(http_rx.spans()) == 2  # nothing rejected leaks into the accessors


def test_logs_are_stored_raw(http_rx: OtlpHttpReceiver) -> None:
    request = logs_service_pb2.ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add()
    record.body.string_value = SECRET
    status, body, _ = _post(http_rx, "/v1/logs", request.SerializeToString())
    assert status == 200
    assert logs_service_pb2.ExportLogsServiceResponse.FromString(body) is not None
    assert SECRET.encode() in http_rx.raw_bodies()[0]
    assert http_rx.requests[0].signal == "logs"
    assert http_rx.logs()[0]["body"] == SECRET


def test_fail_then_ok_counts_exactly_under_concurrency(http_rx: OtlpHttpReceiver) -> None:
    http_rx.set_mode(ReceiverMode("fail_then_ok", status=500, failures=5))
    payload = _trace_request_bytes("c")
    statuses: list[int] = []
    lock = threading.Lock()

    def send() -> None:
        status = _post(http_rx, "/v1/traces", payload)[0]
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 15 + [500] * 5
    assert len(http_rx.spans()) == 15


def test_wait_helpers_report_what_arrived(http_rx: OtlpHttpReceiver) -> None:
    _post(http_rx, "/v1/traces", _trace_request_bytes("only-one"))
    assert [s["name"] for s in http_rx.wait_for_spans(1, timeout=1)] == ["only-one"]
    with pytest.raises(AssertionError, match=r"(?s)2 spans.*only-one.*/v1/traces"):
        http_rx.wait_for_spans(2, timeout=0.2)
    with pytest.raises(AssertionError, match="metrics predicate"):
        http_rx.wait_for_metrics(bool, timeout=0.2)


def test_modes_validate_and_close_releases_the_port() -> None:
    with pytest.raises(ValueError, match="unknown receiver mode"):
        ReceiverMode("flaky")  # type: ignore[arg-type]
    rx = OtlpHttpReceiver(ReceiverMode("status", status=503))
    assert rx.mode.name == "status"
    port = rx.port
    rx.close()
    rx.close()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()


def test_decode_spans_is_shared_code() -> None:
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(_trace_request_bytes("x", "y"))
    assert [s["name"] for s in decode_spans(request)] == ["x", "y"]
