"""Spool records: validation, metric aggregation, and OpenTelemetry SDK objects.

:func:`validate` and :func:`aggregate` are plain Python (the drainer's lean HTTP path uses
them with ``encode``, which writes OTLP protobuf directly). :func:`to_spans` and
:func:`to_metrics` build SDK ``ReadableSpan`` / ``MetricsData`` objects, for the gRPC path
(the SDK's gRPC exporters take nothing else) and as the reference the lean encoder is tested
against; they import the SDK when first called.

Spans keep the ids and times captured in the CLI. Metric points become DELTA points, one per
series (resource + metric + attributes) per batch, over the window from the last accepted
metrics export to now (see ``breaker.DeliveryState.metrics_cursor_ns``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from .._version import __version__
from ..schema import (
    BUILTIN_METRIC_ATTRIBUTES,
    COMMAND_DURATION_METRIC,
    RECORD_VERSION,
    SEMCONV_SCHEMA_URL,
    upgrade_attributes,
)

TYPE_CHECKING = False  # typing costs a process that has not loaded it ~40 M instructions
if TYPE_CHECKING:
    from typing import Any

    from opentelemetry.sdk.metrics.export import Metric, MetricsData
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, Status

#: The instrumentation scope of everything we send: our package and its version.
SCOPE_NAME = "otel_cli_telemetry"
SCOPE_VERSION = __version__
#: The schema URL of every resource and scope we send (the semantic-conventions version).
SCHEMA_URL = SEMCONV_SCHEMA_URL

#: Buckets (seconds) for command durations: CLI commands run from milliseconds to minutes.
DURATION_BUCKETS_S: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
#: Default buckets for app histograms (the SDK's default explicit bounds).
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0,
    5.0,
    10.0,
    25.0,
    50.0,
    75.0,
    100.0,
    250.0,
    500.0,
    750.0,
    1000.0,
    2500.0,
    5000.0,
    7500.0,
    10000.0,
)


class InvalidRecord(ValueError):
    """A spool record that cannot be delivered (wrong version or shape); it is dropped."""


_HEX = frozenset("0123456789abcdefABCDEF")
_METRIC_KINDS = frozenset({"counter", "histogram"})


def _hex_id(value: Any, digits: int, what: str) -> str:
    if not (
        isinstance(value, str)
        and len(value) == digits
        and set(value) <= _HEX
        and int(value, 16) != 0
    ):
        raise InvalidRecord(f"bad {what}")
    return value


def _time(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise InvalidRecord(f"bad {what}")
    return value


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SCALARS = (str, bool, float)


def _primitive(value: Any) -> bool:
    kind = type(value)
    if kind in _SCALARS:
        return True
    return kind is int and _INT64_MIN <= value <= _INT64_MAX


def clean_attributes(value: Any) -> dict[str, Any]:
    """Only what the OTLP encoders accept: str keys; scalars or homogeneous lists of them.

    The encoders log (to the host's stderr, when delivering in-process) and skip anything
    else; the privacy layer already wrote only such values, so this only guards against a
    damaged or hand-edited spool file. (Exact types: what ``json.loads`` makes; it runs for
    every attribute the drainer delivers, so it is written for speed.)
    """
    if type(value) is not dict:
        return {}
    clean: dict[str, Any] = {}
    for key, item in value.items():
        if type(key) is not str:
            continue
        kind = type(item)
        if kind is list:
            homogeneous = not item or (
                len({type(x) for x in item}) == 1 and all(_primitive(x) for x in item)
            )
            if homogeneous:
                clean[key] = item
        elif kind in _SCALARS or (kind is int and _INT64_MIN <= item <= _INT64_MAX):
            clean[key] = item
    return clean


def validate(record: Any) -> dict[str, Any]:
    """The record, checked and cleaned, if delivery can use it, else :class:`InvalidRecord`.

    Everything :func:`to_spans` and :func:`to_metrics` read is checked here, so that one
    damaged record is dropped on its own instead of failing (and blocking) a whole batch.
    """
    if not isinstance(record, dict) or record.get("v") != RECORD_VERSION:
        raise InvalidRecord("unsupported record version")
    if not isinstance(record.get("name"), str):
        raise InvalidRecord("bad name")
    if not isinstance(record.get("attributes"), dict) or not isinstance(
        record.get("resource"), dict
    ):
        raise InvalidRecord("bad attributes")
    _hex_id(record.get("trace_id"), 32, "trace_id")
    _hex_id(record.get("span_id"), 16, "span_id")
    if record.get("parent_span_id"):
        _hex_id(record["parent_span_id"], 16, "parent_span_id")
    else:
        record["parent_span_id"] = None
    _time(record.get("start_ns"), "start_ns")
    _time(record.get("end_ns"), "end_ns")
    # A record spooled by the previous version (same record format, older attribute
    # names) is delivered under the current names.
    record["attributes"] = upgrade_attributes(clean_attributes(record["attributes"]))
    record["resource"] = upgrade_attributes(clean_attributes(record["resource"]))
    phases = record.get("phases", [])
    if not isinstance(phases, list):
        raise InvalidRecord("bad phases")
    for phase in phases:
        if not isinstance(phase, dict) or not isinstance(phase.get("name"), str):
            raise InvalidRecord("bad phase")
        _hex_id(phase.get("span_id"), 16, "phase span_id")
        _hex_id(phase.get("parent_span_id"), 16, "phase parent_span_id")
        _time(phase.get("start_ns"), "phase start_ns")
        _time(phase.get("end_ns"), "phase end_ns")
        phase["attributes"] = clean_attributes(phase.get("attributes", {}))
    metrics = record.get("metrics", [])
    if not isinstance(metrics, list):
        raise InvalidRecord("bad metrics")
    for metric in metrics:
        if (
            not isinstance(metric, dict)
            or not isinstance(metric.get("name"), str)
            or metric.get("kind", "counter") not in _METRIC_KINDS
            or not isinstance(metric.get("unit", ""), str)
            or not isinstance(metric.get("description", ""), str)
            or not isinstance(metric.get("points", []), list)
        ):
            raise InvalidRecord("bad metric")
        points = []
        for point in metric.get("points", []):
            if isinstance(point, dict):
                points.append(
                    {
                        "value": point.get("value"),
                        "attributes": clean_attributes(point.get("attributes", {})),
                    }
                )
        metric["points"] = points
    return record


def _scope() -> InstrumentationScope:
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    return InstrumentationScope(SCOPE_NAME, SCOPE_VERSION, schema_url=SCHEMA_URL)


def _context(trace_id: str, span_id: str, remote: bool = False) -> SpanContext:
    from opentelemetry.trace import SpanContext, TraceFlags

    return SpanContext(
        trace_id=int(trace_id, 16),
        span_id=int(span_id, 16),
        is_remote=remote,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def _status(value: str) -> Status:
    from opentelemetry.trace import Status, StatusCode

    return Status(StatusCode.ERROR) if value == "ERROR" else Status(StatusCode.UNSET)


def to_spans(record: dict[str, Any]) -> list[ReadableSpan]:
    """The command span and its phase spans, as SDK objects; none for a record the sampler
    did not keep (``"sampled": false``: its metrics are still sent)."""
    if record.get("sampled") is False:
        return []
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanKind

    scope = _scope()
    resource = Resource(record["resource"], schema_url=SCHEMA_URL)
    trace_id = record["trace_id"]
    parent_id = record.get("parent_span_id") or ""
    spans = [
        ReadableSpan(
            name=record["name"],
            context=_context(trace_id, record["span_id"]),
            parent=_context(trace_id, parent_id, remote=True) if parent_id else None,
            resource=resource,
            attributes=record["attributes"],
            kind=SpanKind.INTERNAL,
            status=_status(record.get("status", "")),
            start_time=record["start_ns"],
            end_time=record["end_ns"],
            instrumentation_scope=scope,
        )
    ]
    for phase in record.get("phases", []):
        spans.append(
            ReadableSpan(
                name=phase["name"],
                context=_context(trace_id, phase["span_id"]),
                parent=_context(trace_id, phase["parent_span_id"]),
                resource=resource,
                attributes=phase.get("attributes", {}),
                kind=SpanKind.INTERNAL,
                status=_status(phase.get("status", "")),
                start_time=phase["start_ns"],
                end_time=phase["end_ns"],
                instrumentation_scope=scope,
            )
        )
    return spans


class HistogramState:
    """One histogram series: bucket counts over fixed bounds, count, sum, min and max."""

    __slots__ = ("bounds", "count", "counts", "max", "min", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.count = 0
        self.total = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def record(self, value: float) -> None:
        """Count one value (a value on a bound falls in the bucket that bound closes)."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def merge(self, other: HistogramState) -> None:
        """Add ``other`` (same bounds) into this one."""
        if other.bounds != self.bounds:
            raise ValueError("histogram bounds differ")
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)


def series_key(attributes: dict[str, Any]) -> Any:
    """A hashable, order-free identity for an attribute set (a resource, a series)."""
    try:
        return frozenset(attributes.items())
    except TypeError:  # a list value: hash its items as a tuple
        return frozenset(
            (k, tuple(v) if isinstance(v, list) else v) for k, v in attributes.items()
        )


_key = series_key


class MetricSeries:
    """One metric's aggregated series in a batch: kind, unit, description, and per attribute
    set either a number (counter) or a :class:`HistogramState`."""

    __slots__ = ("description", "kind", "name", "series", "unit")

    def __init__(self, name: str, kind: str, unit: str, description: str) -> None:
        self.name = name
        self.kind = kind
        self.unit = unit
        self.description = description
        self.series: dict[Any, tuple[dict[str, Any], Any]] = {}


#: resource attributes and its metrics by name, one entry per distinct resource.
if TYPE_CHECKING:
    Aggregate = list[tuple[dict[str, Any], dict[str, MetricSeries]]]
else:  # the alias's parts are for the type checker (no typing import at run time)
    Aggregate = list


def aggregate(records: Iterable[dict[str, Any]]) -> Aggregate:
    """All metric points of ``records`` (validated), summed per resource, metric and series.

    Every record adds one ``cli_telemetry.command.duration`` point; counters add up,
    histograms count into fixed buckets. Pure Python: both encoders (SDK objects, direct
    protobuf) use it.
    """
    by_resource: dict[Any, tuple[dict[str, Any], dict[str, MetricSeries]]] = {}
    for record in records:
        res_key = _key(record["resource"])
        entry = by_resource.get(res_key)
        if entry is None:
            entry = by_resource[res_key] = (record["resource"], {})
        metrics = entry[1]
        duration_s = max(0, record["end_ns"] - record["start_ns"]) / 1e9
        attrs = {
            k: record["attributes"][k]
            for k in BUILTIN_METRIC_ATTRIBUTES
            if k in record["attributes"]
        }
        _add(
            metrics,
            COMMAND_DURATION_METRIC,
            "histogram",
            "s",
            "Duration of CLI commands",
            duration_s,
            attrs,
            DURATION_BUCKETS_S,
        )
        for metric in record.get("metrics", []):
            for point in metric.get("points", []):
                value = point.get("value")
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                if isinstance(value, int) and not -(2**63) <= value < 2**63:
                    value = float(value)  # protobuf's int64 would refuse it
                _add(
                    metrics,
                    metric["name"],
                    metric.get("kind", "counter"),
                    metric.get("unit", ""),
                    metric.get("description", ""),
                    value,
                    point.get("attributes", {}),
                    DEFAULT_BUCKETS,
                )
    return list(by_resource.values())


def _add(
    metrics: dict[str, MetricSeries],
    name: str,
    kind: str,
    unit: str,
    description: str,
    value: float,
    attributes: dict[str, Any],
    bounds: Sequence[float],
) -> None:
    metric = metrics.get(name)
    if metric is None:
        metric = metrics[name] = MetricSeries(name, kind, unit, description)
    key = _key(attributes)
    if metric.kind == "histogram":
        state = metric.series.get(key)
        if state is None:
            state = metric.series[key] = (attributes, HistogramState(bounds))
        state[1].record(float(value))
    else:
        previous = metric.series.get(key, (attributes, 0))[1]
        metric.series[key] = (attributes, previous + value)


def to_metrics(
    records: Iterable[dict[str, Any]],
    start_ns: int,
    end_ns: int,
    temporality: str = "delta",
) -> MetricsData:
    """All metric points of ``records`` as SDK ``MetricsData`` over ``[start_ns, end_ns]``.

    ``temporality`` only labels the points (``"delta"`` or ``"cumulative"``); cumulative
    totals are the caller's to keep (see ``encode.CumulativeTotals``).
    """
    return metrics_data(aggregate(records), start_ns, end_ns, temporality)


def metrics_data(
    aggregated: Aggregate, start_ns: int, end_ns: int, temporality: str = "delta"
) -> MetricsData:
    """SDK ``MetricsData`` for already aggregated series."""
    from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics
    from opentelemetry.sdk.resources import Resource

    scope = _scope()
    resource_metrics = []
    for resource, metrics in aggregated:
        sdk_metrics = [
            _sdk_metric(metric, start_ns, end_ns, temporality) for metric in metrics.values()
        ]
        resource_metrics.append(
            ResourceMetrics(
                resource=Resource(resource, schema_url=SCHEMA_URL),
                scope_metrics=[
                    ScopeMetrics(scope=scope, metrics=sdk_metrics, schema_url=SCHEMA_URL)
                ],
                schema_url=SCHEMA_URL,
            )
        )
    return MetricsData(resource_metrics=resource_metrics)


def _sdk_metric(metric: MetricSeries, start_ns: int, end_ns: int, temporality: str) -> Metric:
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Histogram,
        HistogramDataPoint,
        Metric,
        NumberDataPoint,
        Sum,
    )

    kind = (
        AggregationTemporality.CUMULATIVE
        if temporality == "cumulative"
        else AggregationTemporality.DELTA
    )
    if metric.kind == "histogram":
        histogram_points = [
            HistogramDataPoint(
                attributes=attrs,
                start_time_unix_nano=start_ns,
                time_unix_nano=end_ns,
                count=st.count,
                sum=st.total,
                bucket_counts=st.counts,
                explicit_bounds=list(st.bounds),
                min=st.min,
                max=st.max,
                exemplars=[],
            )
            for attrs, st in metric.series.values()
        ]
        data: Any = Histogram(data_points=histogram_points, aggregation_temporality=kind)
    else:
        points = [
            NumberDataPoint(
                attributes=attrs,
                start_time_unix_nano=start_ns,
                time_unix_nano=end_ns,
                value=total,
                exemplars=[],
            )
            for attrs, total in metric.series.values()
        ]
        data = Sum(data_points=points, aggregation_temporality=kind, is_monotonic=True)
    return Metric(name=metric.name, description=metric.description, unit=metric.unit, data=data)
