"""Raw OTLP protobuf requests for the collector tests (what a hostile client can send)."""

from __future__ import annotations

import os
import time
from typing import Any

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
