"""The lean encoder sends exactly what the OpenTelemetry SDK's own encoder would.

For the same spool records, ``encode`` (OTLP protobuf bytes written by ``protowire``) and the
SDK path (``ReadableSpan`` / ``MetricsData`` objects through
``opentelemetry.exporter.otlp.proto.common`` encoders) are serialized, decoded with
``opentelemetry-proto``, and compared message for message. And byte for byte: ``encode``'s
bytes are the ``SerializeToString()`` of the same request built field by field with
protobuf's classes (``protobuf_reference``), including values a message comparison cannot
check (NaN, ``-0.0``, int64 bounds, empty strings and lists) and arbitrary histogram states.
Records come from hypothesis (every attribute value type the OTLP encoders accept, any
unicode, ids, times, phases, metrics, several resources in one batch) and from the real
hand-off of a test CLI. Also: cumulative temporality, the header parser against the SDK's,
what the drainer does with a record the encoder cannot write, and that encoding imports no
protobuf.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
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

import protobuf_reference
from otel_cli_telemetry.delivery import convert, encode, protowire
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
def _record(
    draw: Any,
    attributes: Any = _attributes,
    scalar: Any = _scalar,
    number: Any = _float,
    resources: Any = None,
) -> dict[str, Any]:
    span_id = draw(_hex16)
    phases = [
        {
            "name": draw(_text),
            "span_id": draw(_hex16),
            "parent_span_id": span_id,
            "start_ns": draw(_time),
            "end_ns": draw(_time),
            "status": draw(_status),
            "attributes": draw(attributes),
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
                    "value": draw(st.one_of(st.integers(-(2**70), 2**70), number)),
                    "attributes": draw(
                        st.dictionaries(st.sampled_from(["a", "b"]), scalar, max_size=2)
                    ),
                }
                for _ in range(draw(st.integers(0, 3)))
            ],
        }
        for _ in range(draw(st.integers(0, 2)))
    ]
    span_attributes = draw(attributes)
    span_attributes.update(
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
        "attributes": span_attributes,
        "resource": draw(
            resources
            if resources is not None
            else st.sampled_from(
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
    _assert_protobufs_bytes(records)


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
    _assert_protobufs_bytes(records)


def _assert_protobufs_bytes(records: list[dict[str, Any]]) -> None:
    """The writer's bytes are those of the same requests built with protobuf (delta and
    cumulative)."""
    traces = protobuf_reference.trace_request(records).SerializeToString()
    assert encode.encode_spans(records) == traces
    aggregated = convert.aggregate(records)
    delta = protobuf_reference.metrics_request(aggregated, 5, 10).SerializeToString()
    assert encode.encode_metrics(records, 5, 10) == delta
    totals = encode.CumulativeTotals(start_ns=3)
    cumulative = protobuf_reference.metrics_request(
        encode.CumulativeTotals(start_ns=3).fold(aggregated, 5), 3, 10, encode.CUMULATIVE
    ).SerializeToString()
    assert encode.encode_metrics(records, 5, 10, encode.CUMULATIVE, totals) == cumulative


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


# ---------------------------------------------------------------- byte for byte with protobuf

_any_float = st.floats()  # NaN, infinities, -0.0: written bit for bit, never omitted
_edge_int = st.one_of(
    _int64,
    st.sampled_from([0, 1, -1, 127, 128, 16383, 16384, -(2**63), 2**63 - 1, 2**31, -(2**31)]),
)
_edge_text = st.one_of(
    _text, st.sampled_from(["", "é", "\u2603", "\U0001f600", "\x00", "a" * 200, "ü" * 9000])
)
_edge_scalar = st.one_of(st.booleans(), _edge_int, _any_float, _edge_text)
_edge_value = st.one_of(
    _edge_scalar,
    st.lists(st.booleans(), max_size=5),
    st.lists(_edge_int, max_size=5),
    st.lists(_any_float, max_size=5),
    st.lists(_edge_text, max_size=5),
)
_edge_resources = st.sampled_from(
    [
        {},  # no attributes: no resource field at all
        {"service.name": "app", "service.version": "1.0"},
        {"service.name": "", "": "", "n": -1, "f": -0.0, "l": []},
    ]
)
_edge_record = st.builds(
    lambda record, unsampled: {**record, "sampled": False} if unsampled else record,
    _record(
        attributes=st.dictionaries(_edge_text, _edge_value, max_size=8),
        scalar=_edge_scalar,
        number=_any_float,
        resources=_edge_resources,
    ),
    st.booleans(),
)


def _same_or_both_refuse(ours: Any, reference: Any) -> None:
    """Equal bytes; or both refuse the data with ValueError (an int64 sum that overflowed:
    protobuf refuses to set it, and the drainer drops that record alone)."""
    try:
        expected = reference()
    except ValueError:
        with pytest.raises(ValueError, match="out of range"):
            ours()
        return
    assert ours() == expected


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_edge_record, min_size=1, max_size=12))
def test_trace_bytes_are_protobufs_own(records: list[dict[str, Any]]) -> None:
    records = _valid(records)
    body = encode.encode_spans(records)
    assert body == protobuf_reference.trace_request(records).SerializeToString()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_edge_record, min_size=1, max_size=12),
    _time,
    _time,
    st.sampled_from([encode.DELTA, encode.CUMULATIVE]),
)
def test_metrics_bytes_are_protobufs_own(
    records: list[dict[str, Any]], start: int, end: int, temporality: str
) -> None:
    records = _valid(records)
    aggregated = convert.aggregate(records)
    totals = encode.CumulativeTotals() if temporality == encode.CUMULATIVE else None
    if totals is not None:  # what encode_metrics sends: the folded totals, from their start
        aggregated = encode.CumulativeTotals().fold(aggregated, start)

    def ours() -> bytes:
        return encode.encode_metrics(records, start, end, temporality, totals)

    def reference() -> bytes:
        request = protobuf_reference.metrics_request(aggregated, start, end, temporality)
        return bytes(request.SerializeToString())

    _same_or_both_refuse(ours, reference)


@st.composite
def _aggregate(draw: Any) -> convert.Aggregate:
    """Aggregated series no batch of records makes: any histogram state (no, few or many
    bounds; counts up to 2**64-1; NaN, infinite, negative sums), int64 and double totals."""
    out: convert.Aggregate = []
    for resource in draw(st.lists(_edge_resources, min_size=1, max_size=3)):
        metrics: dict[str, convert.MetricSeries] = {}
        for index in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from(["counter", "histogram"]))
            metric = convert.MetricSeries(
                draw(st.sampled_from(["", f"m{index}", "x" * 130])),
                kind,
                draw(st.sampled_from(["", "s", "By"])),
                draw(_edge_text),
            )
            for key in range(draw(st.integers(0, 3))):
                attrs = draw(st.dictionaries(_edge_text, _edge_value, max_size=3))
                if kind == "histogram":
                    bounds = draw(st.lists(_any_float, max_size=40))
                    state = convert.HistogramState(bounds)
                    state.counts = draw(
                        st.lists(
                            st.integers(0, 2**64 - 1),
                            min_size=len(bounds) + 1,
                            max_size=len(bounds) + 1,
                        )
                    )
                    state.count = draw(st.integers(0, 2**64 - 1))
                    state.total, state.min, state.max = draw(
                        st.tuples(_any_float, _any_float, _any_float)
                    )
                    metric.series[key] = (attrs, state)
                else:
                    metric.series[key] = (attrs, draw(st.one_of(_edge_int, _any_float)))
            metrics[metric.name] = metric
        out.append((resource, metrics))
    return out


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_aggregate(), _time, _time, st.sampled_from([encode.DELTA, encode.CUMULATIVE]))
def test_any_aggregate_is_written_as_protobuf_writes_it(
    aggregated: convert.Aggregate, start: int, end: int, temporality: str
) -> None:
    expected = protobuf_reference.metrics_request(aggregated, start, end, temporality)
    body = encode.encode_aggregated(aggregated, start, end, temporality)
    assert body == expected.SerializeToString()
    assert encode.metrics_request(aggregated, start, end, temporality) == expected


@pytest.mark.parametrize("total", [2**63, -(2**63) - 1, 2**64])
def test_an_int64_sum_out_of_range_is_refused_as_protobuf_refuses_it(total: int) -> None:
    metric = convert.MetricSeries("app.items", "counter", "", "")
    metric.series["k"] = ({}, total)
    aggregated: convert.Aggregate = [({"service.name": "app"}, {"app.items": metric})]
    with pytest.raises(ValueError, match="out of range"):
        protobuf_reference.metrics_request(aggregated, 1, 2)
    with pytest.raises(ValueError, match="out of range"):
        encode.encode_aggregated(aggregated, 1, 2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8001"),
        (300, "ac02"),
        (2**63 - 1, "ffffffffffffffff7f"),
        (2**64 - 1, "ffffffffffffffffff01"),
        (-1, "ffffffffffffffffff01"),  # an int64's two's complement: always 10 bytes
        (-(2**63), "80808080808080808001"),
    ],
)
def test_varints(value: int, expected: str) -> None:
    assert protowire.varint(value).hex() == expected


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1])
def test_varints_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        protowire.varint(value)
    with pytest.raises(ValueError, match="out of range"):
        protowire.int64(value)


def test_int64_refuses_a_uint64() -> None:
    with pytest.raises(ValueError, match="out of range"):
        protowire.int64(2**63)


def test_a_large_batch_is_byte_identical() -> None:
    """Hundreds of records with long strings: lengths of one to four varint bytes (a
    resource's spans past 2 MiB) at every level (attributes, spans, scopes, resources)."""
    records = []
    for n in range(400):
        record = _counter_record(n)
        record["span_id"] = f"{n + 1:016x}"
        record["attributes"] = {"cli_telemetry.command": "run", "long": "é" * (n * 15)}
        record["resource"] = {"service.name": "app", "service.version": "1.0"}
        record["end_ns"] = 10 + n * 10**6
        records.append(record)
    records = _valid(records)
    body = encode.encode_spans(records)
    assert len(body) > 2**21
    assert body == protobuf_reference.trace_request(records).SerializeToString()
    aggregated = convert.aggregate(records)
    expected = protobuf_reference.metrics_request(aggregated, 5, 10**12).SerializeToString()
    assert encode.encode_metrics(records, 5, 10**12) == expected


def test_encoding_imports_no_protobuf() -> None:
    """The send path (encode, transport) imports neither ``google.protobuf`` nor
    ``opentelemetry.proto``: that import was most of a drainer's start."""
    script = (
        "import sys, json\n"
        "from otel_cli_telemetry.delivery import encode, transport, convert\n"
        f"record = convert.validate(json.loads({json.dumps(json.dumps(_counter_record(3)))}))\n"
        "assert encode.encode_spans([record]) and encode.encode_metrics([record], 1, 2)\n"
        "t = transport.HttpTransport('http://127.0.0.1:9', {})\n"
        "print(sorted(m for m in sys.modules if m.startswith(('google', 'opentelemetry'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_the_response_names_are_still_there() -> None:
    """``encode.ExportTraceServiceResponse`` / ``ExportMetricsServiceResponse``: the
    protobuf classes, imported when first asked for."""
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    assert encode.ExportTraceServiceResponse is trace_service_pb2.ExportTraceServiceResponse
    assert encode.ExportMetricsServiceResponse is metrics_service_pb2.ExportMetricsServiceResponse
    assert set(encode.__all__) <= set(dir(encode)) | {
        "ExportTraceServiceResponse",
        "ExportMetricsServiceResponse",
    }
    with pytest.raises(AttributeError):
        encode.NoSuchThing  # noqa: B018


def test_equal_values_of_other_types_are_written_as_their_own() -> None:
    """``True == 1 == 1.0`` and ``0.0 == -0.0`` in Python: written ``KeyValue`` s kept for
    reuse must never stand in for each other."""
    values: list[Any] = [True, 1, 1.0, False, 0, 0.0, -0.0, "1", [1], [True], [1.0], 1, True]
    records = []
    for n, value in enumerate(values):
        record = _counter_record(n)
        record["span_id"] = f"{n + 1:016x}"
        record["attributes"] = {"a": value}
        records.append(record)
    records = _valid(records) * 2  # the second time, from what was kept
    body = encode.encode_spans(records)
    assert body == protobuf_reference.trace_request(records).SerializeToString()
    spans = ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0].spans
    kinds = [s.attributes[0].value.WhichOneof("value") for s in spans[: len(values)]]
    assert kinds[:7] == [
        "bool_value",
        "int_value",
        "double_value",
        "bool_value",
        "int_value",
        "double_value",
        "double_value",
    ]


# ---------------------------------------------------------------- reading partial success


def _protobuf_partial_success(payload: bytes, metrics: bool) -> tuple[int, str]:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceResponse,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    if metrics:
        partial = ExportMetricsServiceResponse.FromString(payload).partial_success
        return partial.rejected_data_points, partial.error_message
    spans = ExportTraceServiceResponse.FromString(payload).partial_success
    return spans.rejected_spans, spans.error_message


_unknown_field = st.builds(
    lambda number, kind, value: (
        protowire.tag(number, kind)
        + {
            protowire.VARINT: protowire.varint(value % 2**64),
            protowire.FIXED64: protowire.fixed64(value % 2**64),
            protowire.FIXED32: protowire.fixed32(value % 2**32),
            protowire.LENGTH_DELIMITED: protowire.delimited(b"", bytes([value % 256]) * 3),
        }[kind]
    ),
    st.integers(1, 40),
    st.sampled_from([0, 1, 2, 5]),
    st.integers(0, 2**64 - 1),
)


@st.composite
def _response(draw: Any) -> bytes:
    """An answer as a backend may write it: partial success (once, twice, or not at all)
    with any int64 and message, unknown fields anywhere, fields of unexpected wire types."""
    out = b""
    for _ in range(draw(st.integers(0, 2))):
        inner = b""
        for field in draw(st.lists(st.sampled_from(["rejected", "message", "unknown"]))):
            if field == "rejected":
                inner += b"\x08" + protowire.varint(draw(_edge_int))
            elif field == "message":
                inner += protowire.string(b"\x12", draw(_edge_text))
            else:
                inner += draw(_unknown_field)
        out += protowire.delimited(b"\x0a", inner) + b"".join(draw(st.lists(_unknown_field)))
    return out


@settings(max_examples=500, deadline=None)
@given(st.one_of(_response(), st.binary(max_size=40)), st.booleans())
def test_partial_success_is_read_as_protobuf_reads_it(payload: bytes, metrics: bool) -> None:
    try:
        expected = _protobuf_partial_success(payload, metrics)
    except Exception:  # DecodeError: the transport then takes the answer as a plain success
        expected = None
    try:
        ours: tuple[int, str] | None = protowire.read_partial_success(payload)
    except ValueError:
        ours = None
    if expected is not None and ours is not None:
        assert ours == expected
    elif ours is None:  # we refuse only what protobuf refuses, or groups (never in OTLP)
        assert expected is None or any(
            wire in (3, 4) for wire in _wire_types(payload)
        ), payload.hex()
    else:
        pytest.fail(f"protobuf refuses {payload.hex()}, we read {ours}")


def _wire_types(payload: bytes) -> list[int]:
    """The wire types of the top-level keys up to the first malformed one."""
    found = []
    pos = 0
    try:
        while pos < len(payload):
            key, pos = protowire.read_varint(payload, pos)
            found.append(key & 7)
            if key & 7 in (3, 4):
                break
            if key & 7 == 0:
                _, pos = protowire.read_varint(payload, pos)
            elif key & 7 == 1:
                pos += 8
            elif key & 7 == 5:
                pos += 4
            else:
                size, pos = protowire.read_varint(payload, pos)
                pos += size
    except ValueError:
        pass
    return found


def test_the_collectors_empty_partial_success_is_read_without_protobuf() -> None:
    assert protowire.read_partial_success(b"") == (0, "")
    assert protowire.read_partial_success(b"\x0a\x00") == (0, "")  # the collector's "ok"
    body = b"\x0a\x0a\x08\x03\x12\x06quota!"
    assert protowire.read_partial_success(body) == (3, "quota!")
    with pytest.raises(ValueError):
        protowire.read_partial_success(b"\x0a\x05\x08")  # cut short
