"""Raw OTLP protobuf requests for the collector tests (what a hostile client can send)."""

from __future__ import annotations

import base64
import gzip
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import grpc
import requests
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_DELTA,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=kvs(value)))
    raise TypeError(type(value))


def kvs(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()]


def new_trace_id() -> bytes:
    return os.urandom(16)


def new_span_id() -> bytes:
    return os.urandom(8)


def span(
    name: str,
    attributes: dict[str, Any] | None = None,
    *,
    trace_id: bytes | None = None,
    parent: bytes = b"",
    span_id: bytes | None = None,
    error: bool = False,
    status_message: str = "",
    events: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
    links: list[dict[str, Any]] = (),  # type: ignore[assignment]
    trace_state: str = "",
    duration_s: float = 0.05,
) -> Span:
    end = time.time_ns()
    start = end - int(duration_s * 1e9)
    out = Span(
        trace_id=trace_id or new_trace_id(),
        span_id=span_id or new_span_id(),
        parent_span_id=parent,
        name=name,
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=kvs(attributes or {}),
        trace_state=trace_state,
        status=Status(
            code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET,
            message=status_message,
        ),
    )
    for event_name, event_attrs in events:
        out.events.add(time_unix_nano=end, name=event_name, attributes=kvs(event_attrs))
    for link_attrs in links:
        out.links.add(
            trace_id=new_trace_id(),
            span_id=new_span_id(),
            attributes=kvs(link_attrs),
            trace_state="link=state",
        )
    return out


def trace_request(
    resource: dict[str, Any],
    spans: list[Span],
    *,
    scope_name: str = "otel_cli_telemetry",
    scope_version: str = "0.1.0",
    scope_attributes: dict[str, Any] | None = None,
) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=kvs(resource)),
                scope_spans=[
                    ScopeSpans(
                        scope=InstrumentationScope(
                            name=scope_name,
                            version=scope_version,
                            attributes=kvs(scope_attributes or {}),
                        ),
                        spans=spans,
                    )
                ],
            )
        ]
    )


def histogram_metric(
    name: str,
    values: list[float],
    attributes: dict[str, Any],
    *,
    unit: str = "s",
    description: str = "",
    bounds: tuple[float, ...] = (0.1, 1.0, 10.0),
    start_ns: int | None = None,
) -> Metric:
    end = time.time_ns()
    counts = [0] * (len(bounds) + 1)
    for v in values:
        counts[sum(1 for b in bounds if v > b)] += 1
    point = HistogramDataPoint(
        attributes=kvs(attributes),
        start_time_unix_nano=start_ns or end - 10**9,
        time_unix_nano=end,
        count=len(values),
        sum=sum(values),
        bucket_counts=counts,
        explicit_bounds=list(bounds),
    )
    return Metric(
        name=name,
        unit=unit,
        description=description,
        histogram=Histogram(
            data_points=[point], aggregation_temporality=AGGREGATION_TEMPORALITY_DELTA
        ),
    )


def counter_metric(
    name: str,
    value: int,
    attributes: dict[str, Any],
    *,
    unit: str = "",
    description: str = "",
    start_ns: int | None = None,
) -> Metric:
    end = time.time_ns()
    point = NumberDataPoint(
        attributes=kvs(attributes),
        start_time_unix_nano=start_ns or end - 10**9,
        time_unix_nano=end,
        as_int=value,
    )
    return Metric(
        name=name,
        unit=unit,
        description=description,
        sum=Sum(
            data_points=[point],
            aggregation_temporality=AGGREGATION_TEMPORALITY_DELTA,
            is_monotonic=True,
        ),
    )


def gauge_metric(name: str, value: float, attributes: dict[str, Any]) -> Metric:
    point = NumberDataPoint(
        attributes=kvs(attributes), time_unix_nano=time.time_ns(), as_double=value
    )
    return Metric(name=name, gauge=Gauge(data_points=[point]))


def metrics_request(
    resource: dict[str, Any], metrics: list[Metric], *, scope_name: str = "otel_cli_telemetry"
) -> ExportMetricsServiceRequest:
    return ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource(attributes=kvs(resource)),
                scope_metrics=[
                    ScopeMetrics(scope=InstrumentationScope(name=scope_name), metrics=metrics)
                ],
            )
        ]
    )


# --- the three OTLP encodings a client may use -----------------------------------------

#: Fields holding W3C ids, which OTLP/JSON writes as hex (protobuf's JSON mapping: base64).
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})


def _hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: base64.b64decode(value).hex()
            if key in _ID_FIELDS and isinstance(value, str)
            else _hex_ids(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    return node


def otlp_json(message: Message) -> bytes:
    """The OTLP/JSON encoding of a request (lowerCamelCase names, integer enums, hex ids)."""
    as_dict = json_format.MessageToDict(
        message, preserving_proto_field_name=False, use_integers_for_enums=True
    )
    return json.dumps(_hex_ids(as_dict), separators=(",", ":")).encode()


def with_raw_bytes(body: bytes, placeholder: str, raw: bytes) -> bytes:
    """``body`` with every occurrence of an ASCII placeholder replaced by raw bytes of the
    same length, so protobuf length prefixes stay right. How invalid UTF-8 is planted: the
    protobuf library refuses to encode it, a hostile client does not."""
    token = placeholder.encode()
    assert len(raw) == len(token), (len(raw), len(token))
    assert token in body, "placeholder not found"
    return body.replace(token, raw)


# --- raw protobuf wire format (what no well-behaved encoder produces) -------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def ld(field: int, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def deep_array_value(levels: int, leaf: str = "x") -> bytes:
    """AnyValue bytes nesting ``levels`` ArrayValues around a string, built in linear time.

    Level i is ``AnyValue{array_value(5): ArrayValue{values(1): <level i+1>}}``: all the
    prefixes come first (outermost first), then the core, so sizes are computed inside-out
    and written outside-in.
    """
    core = ld(1, leaf.encode())
    size = len(core)
    prefixes = []
    for _ in range(levels):
        inner = varint(1 << 3 | 2) + varint(size)
        array_size = len(inner) + size
        outer = varint(5 << 3 | 2) + varint(array_size)
        prefixes.append(outer + inner)
        size = len(outer) + array_size
    prefixes.reverse()
    return b"".join(prefixes) + core


def deep_array_json(levels: int, leaf: str = "x") -> str:
    """The same value in OTLP/JSON."""
    core = json.dumps({"stringValue": leaf}, separators=(",", ":"))
    return '{"arrayValue":{"values":[' * levels + core + "]}}" * levels


#: ResourceSpans' deprecated instrumentation_library_spans: gone from the published proto,
#: still decoded by the collector (as a list of ScopeSpans).
DEPRECATED_SCOPE_SPANS_FIELD = 1000


def trace_request_bytes_with_value(
    request: ExportTraceServiceRequest, key: str, value: bytes, *, scope_field: int = 2
) -> bytes:
    """``request`` (one resource, one scope, one span) encoded with one more attribute on
    its span whose AnyValue is the given raw bytes (e.g. ``deep_array_value``); the scope
    list in ResourceSpans field ``scope_field`` (2, or the deprecated 1000)."""
    rs = request.resource_spans[0]
    ss = rs.scope_spans[0]
    span_bytes = ss.spans[0].SerializeToString() + ld(9, ld(1, key.encode()) + ld(2, value))
    scope_spans = ld(1, ss.scope.SerializeToString()) + ld(2, span_bytes)
    resource_spans = ld(1, rs.resource.SerializeToString()) + ld(scope_field, scope_spans)
    return ld(1, resource_spans)


def trace_json_with_value(request: ExportTraceServiceRequest, key: str, value_json: str) -> bytes:
    """OTLP/JSON of ``request`` with one more span attribute whose value is raw JSON text."""
    marker = "@@VALUE-PLACEHOLDER@@"
    request = ExportTraceServiceRequest.FromString(request.SerializeToString())
    request.resource_spans[0].scope_spans[0].spans[0].attributes.add(
        key=key, value=AnyValue(string_value=marker)
    )
    body = otlp_json(request).decode()
    placeholder = json.dumps({"stringValue": marker}, separators=(",", ":"))
    return body.replace(placeholder, value_json).encode()


# --- sending, over each protocol -------------------------------------------------------

PROTOCOLS = ("http/protobuf", "http/json", "grpc")

_GRPC_METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}


@dataclass
class Sent:
    """What the collector answered: accepted or not, and the status (HTTP code or gRPC name)."""

    accepted: bool
    status: str


def signal_of(request: Message) -> str:
    return "traces" if isinstance(request, ExportTraceServiceRequest) else "metrics"


def send(
    protocol: str,
    http_url: str,
    grpc_target: str,
    signal: str,
    body: bytes,
    *,
    timeout: float = 30,
    compress: bool = False,
) -> Sent:
    """POST/Export already-encoded bytes (protobuf, or JSON for http/json) as a raw client;
    ``compress``: gzip (HTTP Content-Encoding, gRPC message compression)."""
    if protocol == "grpc":
        with grpc.insecure_channel(
            grpc_target, options=[("grpc.max_send_message_length", 64 << 20)]
        ) as channel:
            export = channel.unary_unary(_GRPC_METHODS[signal])
            compression = grpc.Compression.Gzip if compress else grpc.Compression.NoCompression
            try:
                export(body, timeout=timeout, compression=compression)
            except grpc.RpcError as err:
                return Sent(False, err.code().name)
            return Sent(True, "OK")
    headers = {
        "Content-Type": "application/json" if protocol == "http/json" else "application/x-protobuf"
    }
    if compress:
        body = gzip.compress(body, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    response = requests.post(f"{http_url}/v1/{signal}", data=body, headers=headers, timeout=timeout)
    return Sent(response.status_code == 200, str(response.status_code))


def encode(protocol: str, request: Message) -> bytes:
    return otlp_json(request) if protocol == "http/json" else request.SerializeToString()


def sentinel_resource_request(installation_id: str) -> ExportTraceServiceRequest:
    """One clean command span of the given installation (a base to build attacks on)."""
    resource = {
        "service.name": "deployctl",
        "service.version": "1.4.2",
        "os.type": "linux",
        "host.arch": "amd64",
        "service.instance.id": installation_id,
    }
    return trace_request(resource, [span("deployctl deploy", {"cli_telemetry.command": "deploy"})])
