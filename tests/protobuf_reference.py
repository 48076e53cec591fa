"""The reference the wire writer is checked against: OTLP requests built field by field with
protobuf's message classes (``opentelemetry-proto``), then ``SerializeToString()``.

This is how ``otel_cli_telemetry.delivery.encode`` built its requests before it wrote the
bytes itself (``protowire``); ``tests/test_delivery_encode.py`` requires the same bytes
from both, for the same records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_cli_telemetry.delivery.convert import (
    SCHEMA_URL,
    SCOPE_NAME,
    SCOPE_VERSION,
    Aggregate,
    series_key,
)

_SPAN_KIND_INTERNAL = 1
_STATUS_ERROR = 2
_FLAGS_HAS_IS_REMOTE = 0x100
_FLAGS_IS_REMOTE = 0x200
_TEMPORALITY_DELTA, _TEMPORALITY_CUMULATIVE = 1, 2


def _set_value(target: Any, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, (list, tuple)):
        array = target.array_value
        array.SetInParent()
        for item in value:
            _set_value(array.values.add(), item)


def _set_attributes(target: Any, attributes: Mapping[str, Any]) -> None:
    for key, value in attributes.items():
        pair = target.add()
        pair.key = key
        _set_value(pair.value, value)


def _set_scope(target: Any) -> None:
    target.name = SCOPE_NAME
    target.version = SCOPE_VERSION


def _fill_span(
    span: Any,
    trace_id: bytes,
    span_id: str,
    parent_id: str | None,
    parent_remote: bool,
    item: Mapping[str, Any],
) -> None:
    span.trace_id = trace_id
    span.span_id = bytes.fromhex(span_id)
    if parent_id:
        span.parent_span_id = bytes.fromhex(parent_id)
    span.name = item["name"]
    span.kind = _SPAN_KIND_INTERNAL
    span.start_time_unix_nano = item["start_ns"]
    span.end_time_unix_nano = item["end_ns"]
    _set_attributes(span.attributes, item.get("attributes", {}))
    span.status.SetInParent()
    if item.get("status", "") == "ERROR":
        span.status.code = _STATUS_ERROR
    span.flags = _FLAGS_HAS_IS_REMOTE | (_FLAGS_IS_REMOTE if parent_remote else 0)


def trace_request(records: Iterable[Mapping[str, Any]]) -> ExportTraceServiceRequest:
    """The traces request for validated records, built with protobuf."""
    request = ExportTraceServiceRequest()
    by_resource: dict[Any, Any] = {}
    for record in records:
        if record.get("sampled") is False:
            continue
        key = series_key(record["resource"])
        spans = by_resource.get(key)
        if spans is None:
            resource_spans = request.resource_spans.add()
            resource_spans.schema_url = SCHEMA_URL
            _set_attributes(resource_spans.resource.attributes, record["resource"])
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.schema_url = SCHEMA_URL
            _set_scope(scope_spans.scope)
            spans = by_resource[key] = scope_spans.spans
        trace_id = bytes.fromhex(record["trace_id"])
        parent = record.get("parent_span_id") or None
        _fill_span(spans.add(), trace_id, record["span_id"], parent, bool(parent), record)
        for phase in record.get("phases", []):
            _fill_span(
                spans.add(), trace_id, phase["span_id"], phase["parent_span_id"], False, phase
            )
    return request


def metrics_request(
    aggregated: Aggregate, start_ns: int, end_ns: int, temporality: str = "delta"
) -> ExportMetricsServiceRequest:
    """The metrics request for aggregated series, built with protobuf."""
    wire_temporality = (
        _TEMPORALITY_CUMULATIVE if temporality == "cumulative" else _TEMPORALITY_DELTA
    )
    request = ExportMetricsServiceRequest()
    for resource, metrics in aggregated:
        resource_metrics = request.resource_metrics.add()
        resource_metrics.schema_url = SCHEMA_URL
        _set_attributes(resource_metrics.resource.attributes, resource)
        scope_metrics = resource_metrics.scope_metrics.add()
        scope_metrics.schema_url = SCHEMA_URL
        _set_scope(scope_metrics.scope)
        for metric in metrics.values():
            out = scope_metrics.metrics.add()
            out.name = metric.name
            out.description = metric.description
            out.unit = metric.unit
            if metric.kind == "histogram":
                histogram = out.histogram
                histogram.aggregation_temporality = wire_temporality
                for attrs, state in metric.series.values():
                    point = histogram.data_points.add()
                    _set_attributes(point.attributes, attrs)
                    point.start_time_unix_nano = start_ns
                    point.time_unix_nano = end_ns
                    point.count = state.count
                    point.sum = state.total
                    point.bucket_counts.extend(state.counts)
                    point.explicit_bounds.extend(state.bounds)
                    point.min = state.min
                    point.max = state.max
            else:
                total_sum = out.sum
                total_sum.aggregation_temporality = wire_temporality
                total_sum.is_monotonic = True
                for attrs, total in metric.series.values():
                    point = total_sum.data_points.add()
                    _set_attributes(point.attributes, attrs)
                    point.start_time_unix_nano = start_ns
                    point.time_unix_nano = end_ns
                    if isinstance(total, int):
                        point.as_int = total
                    else:
                        point.as_double = total
    return request
