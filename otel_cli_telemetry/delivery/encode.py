"""Spool records -> OTLP protobuf requests, directly, without OpenTelemetry SDK objects.

The lean delivery path: the drainer and CI in-process delivery read validated spool records
(``convert.validate``) and write ``ExportTraceServiceRequest`` / ``ExportMetricsServiceRequest``
messages of ``opentelemetry-proto`` (the wire-format package the OTLP exporters use) field by
field. Building ``ReadableSpan`` / ``MetricsData`` objects first and running the SDK's
encoders gives the same bytes (``tests/test_delivery_encode.py`` decodes both and compares
them) but costs the import of the trace and metrics SDKs (tens of ms, ~10 MiB) and a few
times the CPU per record.

Only the two request modules are imported (they pull in the common, resource, trace and
metrics messages they are made of); with protobuf's upb backend, the default since
protobuf 4.21, the messages are C structures.

Metric temporality: ``"delta"`` (the default; each batch is one window from the last
accepted export, see ``breaker.DeliveryState.metrics_cursor_ns``) or ``"cumulative"``
(running totals since the installation's first export, kept by :class:`CumulativeTotals`),
as ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` asks (see :func:`temporality_from`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from .convert import (
    SCHEMA_URL,
    SCOPE_NAME,
    SCOPE_VERSION,
    Aggregate,
    HistogramState,
    aggregate,
    series_key,
)

__all__ = [
    "CumulativeTotals",
    "ExportMetricsServiceResponse",
    "ExportTraceServiceResponse",
    "encode_metrics",
    "encode_spans",
    "metrics_request",
    "temporality_from",
    "trace_request",
]

DELTA, CUMULATIVE = "delta", "cumulative"
TEMPORALITY_ENV = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"

# Enum values of the OTLP wire format (opentelemetry/proto/trace/v1/trace.proto,
# metrics/v1/metrics.proto): written as numbers so no enum wrapper is looked up per span.
_SPAN_KIND_INTERNAL = 1
_STATUS_UNSET, _STATUS_ERROR = 0, 2
_FLAGS_HAS_IS_REMOTE = 0x100
_FLAGS_IS_REMOTE = 0x200
_TEMPORALITY_DELTA, _TEMPORALITY_CUMULATIVE = 1, 2


def temporality_from(environ: Mapping[str, str], settings: Any = None) -> str:
    """``"cumulative"`` or ``"delta"``: the settings' choice if they carry one, else
    ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE``.

    The specification's values: ``cumulative`` (everything cumulative), ``delta`` and
    ``lowmemory`` (counters and histograms delta: all we send). Unknown values: delta.
    """
    chosen = getattr(settings, "metrics_temporality", None)
    if not isinstance(chosen, str):
        from ..config import resolve_metrics_temporality  # the one place it is resolved

        chosen = resolve_metrics_temporality(environ)
    return CUMULATIVE if chosen.strip().lower() == CUMULATIVE else DELTA


def _set_value(target: Any, value: Any) -> None:
    """Fill an ``AnyValue`` (validated records hold scalars or homogeneous lists of them)."""
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
        array.SetInParent()  # an empty list is still an array value
        for item in value:
            _set_value(array.values.add(), item)


def _set_attributes(target: Any, attributes: Mapping[str, Any]) -> None:
    """Append ``attributes`` to a repeated ``KeyValue`` field, in their order."""
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
    """One request with every record's command span and phase spans.

    Spans are grouped by resource (records of one installation and version share one), in
    the order the records come; the command span is a child of the caller's span when the
    CLI was started with a ``TRACEPARENT`` (a remote parent, flagged as such).
    """
    request = ExportTraceServiceRequest()
    by_resource: dict[Any, Any] = {}
    for record in records:
        if record.get("sampled") is False:  # the sampler did not keep it: metrics only
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


def encode_spans(records: Iterable[Mapping[str, Any]]) -> bytes:
    """The serialized :func:`trace_request` (the body of an OTLP/HTTP traces POST)."""
    return bytes(trace_request(records).SerializeToString())


class CumulativeTotals:
    """Running totals per series since ``start_ns``, for cumulative temporality.

    A CLI has no long-lived process to keep cumulative sums, so the drainer keeps them in a
    small file next to the breaker state: loaded before a batch, folded with the batch's
    points (:meth:`fold`, which changes nothing yet and may be called again), committed and
    saved only once the backend accepted the batch (:meth:`commit`, :meth:`save`): a refused
    batch leaves the totals as they were, so a retry does not count twice. Bounded: past
    :data:`MAX_SERIES` series the totals restart (a new ``start_ns``: a counter reset,
    which every cumulative consumer understands).
    """

    MAX_SERIES = 5000

    def __init__(self, start_ns: int = 0) -> None:
        self.start_ns = start_ns
        self.series: dict[str, Any] = {}
        self._folded: tuple[int, dict[str, Any]] | None = None
        self.folded_start_ns = start_ns

    def commit(self) -> None:
        """Make the last :meth:`fold` the stored totals (its batch was accepted)."""
        if self._folded is not None:
            self.start_ns, self.series = self._folded
            self._folded = None

    @classmethod
    def load(cls, path: str) -> CumulativeTotals:
        """The totals stored in ``path``; empty if missing or unreadable."""
        totals = cls()
        try:
            with open(path, "rb") as handle:
                raw = json.loads(handle.read(16 * 1024 * 1024))
            start = raw["start_ns"]
            series = raw["series"]
            if isinstance(start, int) and isinstance(series, dict):
                totals.start_ns, totals.series = start, series
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return totals

    def save(self, path: str) -> None:
        """Write the totals atomically (never raises: at worst the next export resets)."""
        from .._files import write_atomic

        try:
            data = json.dumps({"start_ns": self.start_ns, "series": self.series})
            write_atomic(path, data.encode())
        except (OSError, ValueError, TypeError):
            pass

    def fold(self, aggregated: Aggregate, start_ns: int) -> Aggregate:
        """The running totals, with this batch's aggregate added, for the batch's series.

        Nothing is stored until :meth:`commit`; :attr:`folded_start_ns` is the start the
        returned totals count from (``start_ns`` when the totals (re)start with this batch).
        """
        series = dict(self.series)
        start = self.start_ns
        if not start or len(series) > self.MAX_SERIES:
            start, series = start_ns, {}
        self._folded = (start, series)
        self.folded_start_ns = start
        result: Aggregate = []
        for resource, metrics in aggregated:
            res_key = json.dumps(sorted(resource.items()), default=str)
            out: dict[str, Any] = {}
            for name, metric in metrics.items():
                copy = type(metric)(metric.name, metric.kind, metric.unit, metric.description)
                for key, (attrs, value) in metric.series.items():
                    slot = json.dumps([res_key, name, metric.kind, list(key)], default=str)
                    stored = series.get(slot)
                    if isinstance(value, HistogramState):
                        total = HistogramState(value.bounds)
                        if isinstance(stored, dict) and len(stored.get("counts", ())) == len(
                            total.counts
                        ):
                            total.counts = list(stored["counts"])
                            total.count = stored["count"]
                            total.total = stored["sum"]
                            total.min = stored["min"]
                            total.max = stored["max"]
                        total.merge(value)
                        series[slot] = {
                            "counts": total.counts,
                            "count": total.count,
                            "sum": total.total,
                            "min": total.min,
                            "max": total.max,
                        }
                        copy.series[key] = (attrs, total)
                    else:
                        base = stored if isinstance(stored, (int, float)) else 0
                        series[slot] = base + value
                        copy.series[key] = (attrs, base + value)
                out[name] = copy
            result.append((resource, out))
        return result


def metrics_request(
    aggregated: Aggregate, start_ns: int, end_ns: int, temporality: str = DELTA
) -> ExportMetricsServiceRequest:
    """One request with every aggregated series as points over ``[start_ns, end_ns]``."""
    wire_temporality = _TEMPORALITY_CUMULATIVE if temporality == CUMULATIVE else _TEMPORALITY_DELTA
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


def encode_metrics(
    records: Iterable[Mapping[str, Any]],
    start_ns: int,
    end_ns: int,
    temporality: str = DELTA,
    totals: CumulativeTotals | None = None,
) -> bytes:
    """The serialized metrics request for ``records`` (the body of an OTLP/HTTP POST).

    Delta: the batch's points over ``[start_ns, end_ns]``. Cumulative: ``totals`` (required)
    is folded with the batch and the running totals are sent from ``totals.start_ns``; the
    caller saves ``totals`` once the backend accepted the request.
    """
    aggregated = aggregate(records)  # type: ignore[arg-type]
    if temporality == CUMULATIVE:
        if totals is None:
            raise ValueError("cumulative temporality needs the running totals")
        aggregated = totals.fold(aggregated, start_ns)
        start_ns = totals.folded_start_ns
    return bytes(metrics_request(aggregated, start_ns, end_ns, temporality).SerializeToString())


def totals_path(root: str) -> str:
    """Where the drainer keeps cumulative totals for the state dir ``root``."""
    return os.path.join(root, "metrics_cumulative.json")
