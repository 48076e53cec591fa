"""The lean encoder sends exactly what the OpenTelemetry SDK's own encoder would.

For the same spool records, ``encode`` (OTLP protobuf written field by field) and the SDK path
(``ReadableSpan`` / ``MetricsData`` objects through ``opentelemetry.exporter.otlp.proto.common``
encoders) are serialized, decoded with ``opentelemetry-proto``, and compared message for
message. Records come from hypothesis (every attribute value type the OTLP encoders accept,
any unicode, ids, times, phases, metrics, several resources in one batch) and from the real
hand-off of a test CLI. Also: cumulative temporality, the header parser against the SDK's,
and what the drainer does with a record the encoder cannot write.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import (
    encode_metrics as sdk_encode_metrics,
)
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as sdk_encode_spans,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.util.re import parse_env_headers

from otel_cli_telemetry.delivery import convert, encode
from otel_cli_telemetry.delivery.transport import parse_headers
from otel_cli_telemetry.schema import RECORD_VERSION

# ---------------------------------------------------------------- strategies

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),  # protobuf strings are UTF-8
    max_size=24,
)
_int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_float = st.floats(allow_nan=False)  # NaN != NaN would fail any message comparison
_scalar = st.one_of(st.booleans(), _int64, _float, _text)
_value = st.one_of(
    _scalar,
    st.lists(st.booleans(), max_size=4),
    st.lists(_int64, max_size=4),
    st.lists(_float, max_size=4),
    st.lists(_text, max_size=4),
)
_attributes = st.dictionaries(_text, _value, max_size=6)
_hex16 = st.integers(min_value=1, max_value=2**64 - 1).map(lambda v: f"{v:016x}")
_hex32 = st.integers(min_value=1, max_value=2**128 - 1).map(lambda v: f"{v:032x}")
_time = st.integers(min_value=0, max_value=2**63 - 1)
_status = st.sampled_from(["UNSET", "ERROR", ""])


@st.composite
def _record(draw: Any) -> dict[str, Any]:
    span_id = draw(_hex16)
    phases = [
        {
            "name": draw(_text),
            "span_id": draw(_hex16),
            "parent_span_id": span_id,
            "start_ns": draw(_time),
            "end_ns": draw(_time),
            "status": draw(_status),
            "attributes": draw(_attributes),
        }
        for _ in range(draw(st.integers(0, 3)))
    ]
    metrics = [
        {
            "name": draw(st.sampled_from(["app.bytes", "app.items", "app.latency"])),
            "kind": draw(st.sampled_from(["counter", "histogram"])),
            "unit": draw(st.sampled_from(["", "By", "s"])),
            "description": draw(_text),
            "points": [
                {
                    "value": draw(st.one_of(st.integers(-(2**70), 2**70), _float)),
                    "attributes": draw(
                        st.dictionaries(st.sampled_from(["a", "b"]), _scalar, max_size=2)
                    ),
                }
                for _ in range(draw(st.integers(0, 3)))
            ],
        }
        for _ in range(draw(st.integers(0, 2)))
    ]
    attributes = draw(_attributes)
    attributes.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "cli_telemetry.command": st.sampled_from(["deploy", "stage list"]),
                    "process.exit.code": st.integers(0, 255),
                    "error.type": st.sampled_from(["usage_error", "builtins.ValueError"]),
                },
            )
        )
    )
    return {
        "v": RECORD_VERSION,
        "name": draw(_text),
        "trace_id": draw(_hex32),
        "span_id": span_id,
        "parent_span_id": draw(st.one_of(st.none(), _hex16)),
        "start_ns": draw(_time),
        "end_ns": draw(_time),
        "status": draw(_status),
        "attributes": attributes,
        "resource": draw(
            st.sampled_from(
                [
                    {"service.name": "app", "service.version": "1.0"},
                    {"service.name": "app", "service.version": "2.0", "os.type": "linux"},
                ]
            )
        ),
        "phases": phases,
        "metrics": metrics,
    }


def _valid(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Through JSON (as the spool stores them) and the drainer's validation."""
    return [convert.validate(json.loads(json.dumps(r))) for r in records]


# ---------------------------------------------------------------- comparisons


def _sdk_traces(records: list[dict[str, Any]]) -> ExportTraceServiceRequest:
    spans = [span for record in records for span in convert.to_spans(record)]
    body = sdk_encode_spans(spans).SerializeToString()
    return ExportTraceServiceRequest.FromString(body)


def _lean_traces(records: list[dict[str, Any]]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(encode.encode_spans(records))


def _sdk_metrics(
    records: list[dict[str, Any]], start: int, end: int, temporality: str = "delta"
) -> ExportMetricsServiceRequest:
    data = convert.to_metrics(records, start, end, temporality)
    return ExportMetricsServiceRequest.FromString(sdk_encode_metrics(data).SerializeToString())


def _lean_metrics(
    records: list[dict[str, Any]], start: int, end: int
) -> ExportMetricsServiceRequest:
    return ExportMetricsServiceRequest.FromString(encode.encode_metrics(records, start, end))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_record(), min_size=1, max_size=4))
def test_traces_decode_identically_to_the_sdk_encoders(records: list[dict[str, Any]]) -> None:
    records = _valid(records)
    ours, theirs = _lean_traces(records), _sdk_traces(records)
    assert ours == theirs
    # And the spans are really there: one per record and phase, nothing merged or lost.
    spans = [s for rs in ours.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(spans) == sum(1 + len(r["phases"]) for r in records)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_record(), min_size=1, max_size=4), _time, _time)
def test_metrics_decode_identically_to_the_sdk_encoders(
    records: list[dict[str, Any]], start: int, end: int
) -> None:
    records = _valid(records)
    assert _lean_metrics(records, start, end) == _sdk_metrics(records, start, end)


def test_a_realistic_batch_is_identical_and_complete() -> None:
    """A command span with a remote parent, phases (one failed), both metric kinds, two
    resources: compared, and then checked field by field against the record."""
    record = {
        "v": RECORD_VERSION,
        "name": "deployctl deploy",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "parent_span_id": "a3ce929d0e0e4736",
        "start_ns": 1_700_000_000_000_000_000,
        "end_ns": 1_700_000_000_250_000_000,
        "status": "ERROR",
        "attributes": {
            "cli_telemetry.command": "deploy",
            "process.exit.code": 1,
            "error.type": "builtins.RuntimeError",
            "cli_telemetry.flags": ["--force", "--stage"],
            "cli_telemetry.sdk.overhead_ms": 1.25,
            "process.interactive": False,
        },
        "resource": {"service.name": "deployctl", "service.version": "1.4.2"},
        "phases": [
            {
                "name": "build",
                "span_id": "1111111111111111",
                "parent_span_id": "00f067aa0ba902b7",
                "start_ns": 1_700_000_000_010_000_000,
                "end_ns": 1_700_000_000_100_000_000,
                "status": "UNSET",
                "attributes": {},
            },
            {
                "name": "upload",
                "span_id": "2222222222222222",
                "parent_span_id": "00f067aa0ba902b7",
                "start_ns": 1_700_000_000_100_000_000,
                "end_ns": 1_700_000_000_200_000_000,
                "status": "ERROR",
                "attributes": {"error.type": "builtins.RuntimeError"},
            },
        ],
        "metrics": [
            {
                "name": "deploy.bytes_uploaded",
                "kind": "counter",
                "unit": "By",
                "description": "bytes",
                "points": [{"value": 10, "attributes": {}}, {"value": 5, "attributes": {}}],
            },
            {
                "name": "deploy.build.duration",
                "kind": "histogram",
                "unit": "s",
                "description": "build time",
                "points": [{"value": 0.5, "attributes": {"stage": "prod"}}],
            },
        ],
    }
    other = {**record, "resource": {"service.name": "deployctl", "service.version": "1.5.0"}}
    other = {**other, "span_id": "3333333333333333", "parent_span_id": None, "phases": []}
    records = _valid([record, other])
    ours = _lean_traces(records)
    assert ours == _sdk_traces(records)
    assert len(ours.resource_spans) == 2
    command, build, upload = ours.resource_spans[0].scope_spans[0].spans
    assert command.parent_span_id.hex() == "a3ce929d0e0e4736"
    assert command.flags == 0x300  # the parent is remote (TRACEPARENT), and we say we know
    assert build.flags == 0x100
    assert (build.status.code, upload.status.code) == (0, 2)
    assert ours.resource_spans[1].scope_spans[0].spans[0].flags == 0x100
    assert ours.resource_spans[0].scope_spans[0].scope.name == "otel_cli_telemetry"
    metrics = _lean_metrics(records, 1, 2)
    assert metrics == _sdk_metrics(records, 1, 2)
    by_name = {m.name: m for m in metrics.resource_metrics[0].scope_metrics[0].metrics}
    assert by_name["deploy.bytes_uploaded"].sum.data_points[0].as_int == 15
    assert by_name["deploy.bytes_uploaded"].sum.aggregation_temporality == 1  # delta
    assert by_name["cli_telemetry.command.duration"].histogram.data_points[0].count == 1


def test_records_from_a_real_cli_are_identical(cli_env: dict[str, str], tmp_path: Any) -> None:
    """What the hand-off of a real click CLI spools, encoded both ways."""
    from otlp_receiver import refused_endpoint
    from support import run_app, wait_for_drainer

    env = {**cli_env, "CLICKAPP_TELEMETRY": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": refused_endpoint()}
    for args in (["deploy"], ["deploy", "--do", "raise", "-f"], ["stage", "new", "x"]):
        run_app("click_app.py", args, env=env)
    wait_for_drainer(env, "clickapp")
    files = sorted((tmp_path / "state").rglob("spool/*.json"))
    assert files, "the CLI spooled nothing"
    records = _valid([json.loads(f.read_bytes()) for f in files])
    assert _lean_traces(records) == _sdk_traces(records)
    assert _lean_metrics(records, 5, 10) == _sdk_metrics(records, 5, 10)


def test_cumulative_totals_grow_across_batches_and_only_when_committed(tmp_path: Any) -> None:
    record = _valid([json.loads(json.dumps(_counter_record(7)))])[0]
    path = str(tmp_path / "totals.json")
    totals = encode.CumulativeTotals.load(path)
    first = ExportMetricsServiceRequest.FromString(
        encode.encode_metrics([record], 100, 200, encode.CUMULATIVE, totals)
    )
    totals.commit()
    totals.save(path)
    # A refused batch: folded, never committed; the retry must not count it twice.
    reloaded = encode.CumulativeTotals.load(path)
    encode.encode_metrics([record], 200, 300, encode.CUMULATIVE, reloaded)
    second = ExportMetricsServiceRequest.FromString(
        encode.encode_metrics([record], 200, 300, encode.CUMULATIVE, reloaded)
    )

    def point(request: ExportMetricsServiceRequest, name: str) -> Any:
        for metric in request.resource_metrics[0].scope_metrics[0].metrics:
            if metric.name == name:
                return metric
        raise AssertionError(name)

    assert point(first, "app.items").sum.data_points[0].as_int == 7
    assert point(second, "app.items").sum.data_points[0].as_int == 14
    assert point(second, "app.items").sum.aggregation_temporality == 2  # cumulative
    assert point(second, "app.items").sum.data_points[0].start_time_unix_nano == 100
    assert point(second, "cli_telemetry.command.duration").histogram.data_points[0].count == 2
    # Cumulative points are what the SDK would send for the same running totals.
    again = encode.CumulativeTotals.load(path)
    aggregated = again.fold(convert.aggregate([record]), 200)
    sdk = convert.metrics_data(aggregated, again.folded_start_ns, 300, "cumulative")
    assert second == ExportMetricsServiceRequest.FromString(
        sdk_encode_metrics(sdk).SerializeToString()
    )


def _counter_record(value: int) -> dict[str, Any]:
    return {
        "v": RECORD_VERSION,
        "name": "app run",
        "trace_id": "1" * 32,
        "span_id": "2" * 16,
        "parent_span_id": None,
        "start_ns": 10,
        "end_ns": 20,
        "status": "UNSET",
        "attributes": {"cli_telemetry.command": "run"},
        "resource": {"service.name": "app"},
        "phases": [],
        "metrics": [
            {
                "name": "app.items",
                "kind": "counter",
                "unit": "",
                "description": "",
                "points": [{"value": value, "attributes": {}}],
            }
        ],
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cumulative", "cumulative"),
        ("CUMULATIVE ", "cumulative"),
        ("delta", "delta"),
        ("lowmemory", "delta"),
        ("", "delta"),
        ("bogus", "delta"),
    ],
)
def test_temporality_preference(value: str, expected: str) -> None:
    env = {encode.TEMPORALITY_ENV: value}
    assert encode.temporality_from(env) == expected


def test_a_lone_surrogate_cannot_be_encoded() -> None:
    """JSON can carry a lone surrogate (``"\\ud800"``); protobuf strings cannot. The encoder
    raises (the drainer then drops that record alone, see test_delivery_drain)."""
    record = _valid([_counter_record(1)])[0]
    record["attributes"]["cli_telemetry.command"] = "\ud800"
    with pytest.raises(UnicodeEncodeError):
        encode.encode_spans([record])


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet='ab=,%20 \t;"\\Xx-_:/é+2\r\n', max_size=20))
def test_header_parser_agrees_with_the_sdk(value: str) -> None:
    logging.getLogger("opentelemetry.util.re").disabled = True
    assert parse_headers(value) == dict(parse_env_headers(value, liberal=True))


def test_header_values_are_percent_decoded() -> None:
    assert parse_headers("Authorization=Bearer%20abc, x-tenant = t1 ,bad") == {
        "authorization": "Bearer abc",
        "x-tenant": "t1",
    }
