"""Spool records -> OTLP protobuf request bodies, written directly, without protobuf.

The lean delivery path: the drainer and CI in-process delivery read validated spool records
(``convert.validate``) and write the bytes of ``ExportTraceServiceRequest`` /
``ExportMetricsServiceRequest`` (the messages of ``opentelemetry-proto`` the OTLP exporters
send) with the small wire-format writer of :mod:`.protowire`. Nothing of ``google.protobuf``
is imported on the way: that import alone was ~25 ms of each drainer start and of CI
in-process delivery. The bytes are the ones protobuf's ``SerializeToString()`` gives for the
same messages (fields in number order, defaults omitted as proto3 does, ``oneof`` and
``optional`` values always written): ``tests/test_delivery_encode.py`` compares them byte for
byte with messages built field by field with protobuf, and decodes them to compare with what
the OpenTelemetry SDK's own encoders produce from SDK objects for the same records.

Only the fields we set are written: resource (attributes), scope (name, version), schema
URLs; spans (ids, name, kind, times, attributes, status, flags); sums (int or double points,
temporality, monotonic) and explicit-bucket histograms (count, sum, buckets, bounds, min,
max). :func:`trace_request` / :func:`metrics_request` parse the bytes back into protobuf
messages, for callers that want messages (they import protobuf); the two ``Export*Response``
names are imported from ``opentelemetry-proto`` when first asked for.

Metric temporality: ``"delta"`` (the default; each batch is one window from the last
accepted export, see ``breaker.DeliveryState.metrics_cursor_ns``) or ``"cumulative"``
(running totals since the installation's first export, kept by :class:`CumulativeTotals`),
as ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` asks (see :func:`temporality_from`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from .convert import (
    SCHEMA_URL,
    SCOPE_NAME,
    SCOPE_VERSION,
    Aggregate,
    HistogramState,
    aggregate,
    series_key,
)
from .protowire import (
    checked_sfixed64,
    delimited,
    double,
    fixed32,
    fixed64,
    int64,
    packed_double,
    packed_fixed64,
    string,
)

TYPE_CHECKING = False  # typing costs a process that has not loaded it ~40 M instructions
if TYPE_CHECKING:
    from typing import Any

    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
        ExportMetricsServiceResponse,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

__all__ = [
    "CumulativeTotals",
    "ExportMetricsServiceResponse",
    "ExportTraceServiceResponse",
    "encode_aggregated",
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


# Keys (tag bytes) of the fields written, by message (opentelemetry/proto/**/*.proto).
# common.v1: KeyValue, AnyValue, ArrayValue, InstrumentationScope.
_KV_KEY, _KV_VALUE = b"\x0a", b"\x12"
_ANY_STRING, _ANY_BOOL, _ANY_INT = b"\x0a", b"\x10", b"\x18"
_ANY_DOUBLE, _ANY_ARRAY = b"\x21", b"\x2a"
_ARRAY_VALUES = b"\x0a"
_SCOPE_NAME, _SCOPE_VERSION = b"\x0a", b"\x12"
# resource.v1.Resource; the ResourceSpans/ResourceMetrics and ScopeSpans/ScopeMetrics pairs
# share their numbering: 1 resource/scope, 2 scope_*/spans|metrics, 3 schema_url.
_RESOURCE_ATTRIBUTES = b"\x0a"
_REQUEST_ITEMS = b"\x0a"
_RES_RESOURCE, _RES_SCOPES, _RES_SCHEMA_URL = b"\x0a", b"\x12", b"\x1a"
_SCOPE_SCOPE, _SCOPE_ITEMS, _SCOPE_SCHEMA_URL = b"\x0a", b"\x12", b"\x1a"
# trace.v1.Span and Status.
_SPAN_TRACE_ID, _SPAN_SPAN_ID, _SPAN_PARENT_ID, _SPAN_NAME = b"\x0a", b"\x12", b"\x22", b"\x2a"
_SPAN_KIND = b"\x30"
_SPAN_START, _SPAN_END, _SPAN_ATTRIBUTES = b"\x39", b"\x41", b"\x4a"
_SPAN_STATUS, _SPAN_FLAGS = b"\x7a", b"\x85\x01"
_STATUS_CODE = b"\x18"


def _any_value(value: Any) -> bytes | None:
    """An ``AnyValue``'s fields (validated records hold scalars or homogeneous lists of them);
    None for a value of no OTLP type (then no value is written, as before)."""
    if isinstance(value, bool):
        return _ANY_BOOL + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return string(_ANY_STRING, value)
    if isinstance(value, int):
        return _ANY_INT + int64(value)
    if isinstance(value, float):
        return _ANY_DOUBLE + double(value)
    if isinstance(value, (list, tuple)):
        items = []
        for item in value:
            encoded = _any_value(item)
            items.append(delimited(_ARRAY_VALUES, b"" if encoded is None else encoded))
        return delimited(_ANY_ARRAY, b"".join(items))  # an empty list is still an array value
    return None


def _key_value(name: str, value: Any) -> bytes:
    """A ``KeyValue``, length-prefixed (the field key is the caller's). An empty key is a
    default, so it is omitted (protobuf omits it too)."""
    pair = string(_KV_KEY, name) if name else b""
    encoded = _any_value(value)
    if encoded is not None:
        pair += delimited(_KV_VALUE, encoded)
    return delimited(b"", pair)


#: Written ``KeyValue`` s by (key, exact type, value), for str, int and bool values: most
#: attributes repeat from record to record (command, exit code, service, os). The exact type
#: keeps ``True``, ``1`` apart (equal in a dict); floats are not kept (``-0.0 == 0.0``).
_KV_CACHE: dict[tuple[str, type, Any], bytes] = {}
_KV_CACHE_MAX, _KV_CACHE_MAX_BYTES = 1024, 256


def _attributes(key: bytes, attributes: Mapping[str, Any]) -> bytes:
    """``attributes`` as a repeated ``KeyValue`` field with the key ``key``, in their order."""
    out = []
    cache = _KV_CACHE
    for name, value in attributes.items():
        kind = value.__class__
        if kind is str or kind is int or kind is bool:
            slot = (name, kind, value)
            pair = cache.get(slot)
            if pair is None:
                pair = _key_value(name, value)
                if len(pair) <= _KV_CACHE_MAX_BYTES:
                    if len(cache) >= _KV_CACHE_MAX:
                        cache.clear()
                    cache[slot] = pair
        else:
            pair = _key_value(name, value)
        out.append(key)
        out.append(pair)
    return b"".join(out)


#: The ``scope`` field (InstrumentationScope: our name and version), the same everywhere.
_SCOPE_FIELD = delimited(
    _SCOPE_SCOPE,
    (string(_SCOPE_NAME, SCOPE_NAME) if SCOPE_NAME else b"")
    + (string(_SCOPE_VERSION, SCOPE_VERSION) if SCOPE_VERSION else b""),
)
_SCHEMA_URLS = (
    string(_RES_SCHEMA_URL, SCHEMA_URL) if SCHEMA_URL else b"",
    string(_SCOPE_SCHEMA_URL, SCHEMA_URL) if SCHEMA_URL else b"",
)
_STATUS_FIELDS = {
    True: delimited(_SPAN_STATUS, _STATUS_CODE + bytes((_STATUS_ERROR,))),
    False: delimited(_SPAN_STATUS, b""),  # always present, as the SDK's encoder sets it
}


_KIND_FIELD = _SPAN_KIND + bytes((_SPAN_KIND_INTERNAL,))
_FLAGS_FIELDS = {
    remote: _SPAN_FLAGS + fixed32(_FLAGS_HAS_IS_REMOTE | (_FLAGS_IS_REMOTE if remote else 0))
    for remote in (False, True)
}


def _span(
    trace_id: bytes,
    span_id: str,
    parent_id: str | None,
    parent_remote: bool,
    item: Mapping[str, Any],
) -> bytes:
    """One ``Span`` field (in ``ScopeSpans.spans``); ``trace_id`` is its written field."""
    parts = [trace_id, delimited(_SPAN_SPAN_ID, bytes.fromhex(span_id))]
    if parent_id:
        parts.append(delimited(_SPAN_PARENT_ID, bytes.fromhex(parent_id)))
    name = item["name"]
    if name:
        parts.append(string(_SPAN_NAME, name))
    parts.append(_KIND_FIELD)
    start, end = item["start_ns"], item["end_ns"]
    if start:
        parts.append(_SPAN_START + fixed64(start))
    if end:
        parts.append(_SPAN_END + fixed64(end))
    parts.append(_attributes(_SPAN_ATTRIBUTES, item.get("attributes", {})))
    parts.append(_STATUS_FIELDS[item.get("status", "") == "ERROR"])
    parts.append(_FLAGS_FIELDS[parent_remote])
    return delimited(_SCOPE_ITEMS, b"".join(parts))


def _resource_field(resource: Mapping[str, Any]) -> bytes:
    """The ``resource`` field of a ``Resource{Spans,Metrics}``: absent without attributes (the
    message was never set), as protobuf leaves it."""
    if not resource:
        return b""
    return delimited(_RES_RESOURCE, _attributes(_RESOURCE_ATTRIBUTES, resource))


def _resource_group(resource: Mapping[str, Any], items: list[bytes]) -> bytes:
    """One ``Resource{Spans,Metrics}`` field of a request: the resource, one scope with
    ``items`` (spans or metrics, already written as fields), the schema URLs."""
    resource_schema, scope_schema = _SCHEMA_URLS
    scope = delimited(_RES_SCOPES, _SCOPE_FIELD + b"".join(items) + scope_schema)
    return delimited(_REQUEST_ITEMS, _resource_field(resource) + scope + resource_schema)


def encode_spans(records: Iterable[Mapping[str, Any]]) -> bytes:
    """The ``ExportTraceServiceRequest`` (the body of an OTLP/HTTP traces POST) with every
    record's command span and phase spans.

    Spans are grouped by resource (records of one installation and version share one), in
    the order the records come; the command span is a child of the caller's span when the
    CLI was started with a ``TRACEPARENT`` (a remote parent, flagged as such).
    """
    by_resource: dict[Any, tuple[Mapping[str, Any], list[bytes]]] = {}
    for record in records:
        if record.get("sampled") is False:  # the sampler did not keep it: metrics only
            continue
        key = series_key(record["resource"])
        group = by_resource.get(key)
        if group is None:
            group = by_resource[key] = (record["resource"], [])
        spans = group[1]
        trace_id = delimited(_SPAN_TRACE_ID, bytes.fromhex(record["trace_id"]))
        parent = record.get("parent_span_id") or None
        spans.append(_span(trace_id, record["span_id"], parent, bool(parent), record))
        for phase in record.get("phases", []):
            spans.append(_span(trace_id, phase["span_id"], phase["parent_span_id"], False, phase))
    return b"".join(_resource_group(resource, spans) for resource, spans in by_resource.values())


def trace_request(records: Iterable[Mapping[str, Any]]) -> ExportTraceServiceRequest:
    """:func:`encode_spans` as a protobuf message (imports ``opentelemetry-proto``)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    request.ParseFromString(encode_spans(records))
    return request


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
        import json  # cumulative temporality only: the delta path never imports it

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
        import json

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
        import json  # the slot keys stored in metrics_cumulative.json are json.dumps text

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


# metrics.v1: Metric, Sum, Histogram and their data points.
_METRIC_NAME, _METRIC_DESCRIPTION, _METRIC_UNIT = b"\x0a", b"\x12", b"\x1a"
_METRIC_SUM, _METRIC_HISTOGRAM = b"\x3a", b"\x4a"
_DATA_POINTS, _TEMPORALITY, _SUM_MONOTONIC = b"\x0a", b"\x10", b"\x18\x01"
_POINT_START, _POINT_TIME = b"\x11", b"\x19"
_NUMBER_AS_DOUBLE, _NUMBER_AS_INT, _NUMBER_ATTRIBUTES = b"\x21", b"\x31", b"\x3a"
_HIST_COUNT, _HIST_SUM, _HIST_BUCKETS, _HIST_BOUNDS = b"\x21", b"\x29", b"\x32", b"\x3a"
_HIST_ATTRIBUTES, _HIST_MIN, _HIST_MAX = b"\x4a", b"\x59", b"\x61"


def encode_aggregated(
    aggregated: Aggregate, start_ns: int, end_ns: int, temporality: str = DELTA
) -> bytes:
    """The ``ExportMetricsServiceRequest`` with every aggregated series as points over
    ``[start_ns, end_ns]`` (the body :func:`encode_metrics` sends)."""
    wire_temporality = _TEMPORALITY_CUMULATIVE if temporality == CUMULATIVE else _TEMPORALITY_DELTA
    times = (_POINT_START + fixed64(start_ns) if start_ns else b"") + (
        _POINT_TIME + fixed64(end_ns) if end_ns else b""
    )
    temporality_field = _TEMPORALITY + bytes((wire_temporality,))
    groups = []
    for resource, metrics in aggregated:
        written = []
        for metric in metrics.values():
            head = b""
            if metric.name:
                head += string(_METRIC_NAME, metric.name)
            if metric.description:
                head += string(_METRIC_DESCRIPTION, metric.description)
            if metric.unit:
                head += string(_METRIC_UNIT, metric.unit)
            points = []
            if metric.kind == "histogram":
                for attrs, state in metric.series.values():
                    count = state.count
                    point = (
                        times
                        + (_HIST_COUNT + fixed64(count) if count else b"")
                        + _HIST_SUM
                        + double(state.total)
                        + packed_fixed64(_HIST_BUCKETS, state.counts)
                        + packed_double(_HIST_BOUNDS, state.bounds)
                        + _attributes(_HIST_ATTRIBUTES, attrs)
                        + _HIST_MIN
                        + double(state.min)
                        + _HIST_MAX
                        + double(state.max)
                    )
                    points.append(delimited(_DATA_POINTS, point))
                data = delimited(_METRIC_HISTOGRAM, b"".join(points) + temporality_field)
            else:
                for attrs, total in metric.series.values():
                    if isinstance(total, int):
                        value = _NUMBER_AS_INT + checked_sfixed64(total)
                    else:
                        value = _NUMBER_AS_DOUBLE + double(total)
                    point = times + value + _attributes(_NUMBER_ATTRIBUTES, attrs)
                    points.append(delimited(_DATA_POINTS, point))
                data = delimited(
                    _METRIC_SUM, b"".join(points) + temporality_field + _SUM_MONOTONIC
                )
            written.append(delimited(_SCOPE_ITEMS, head + data))
        groups.append(_resource_group(resource, written))
    return b"".join(groups)


def metrics_request(
    aggregated: Aggregate, start_ns: int, end_ns: int, temporality: str = DELTA
) -> ExportMetricsServiceRequest:
    """The metrics request for already aggregated series, as a protobuf message (imports
    ``opentelemetry-proto``; :func:`encode_metrics` writes its bytes without it)."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    request = ExportMetricsServiceRequest()
    request.ParseFromString(encode_aggregated(aggregated, start_ns, end_ns, temporality))
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
    return encode_aggregated(aggregated, start_ns, end_ns, temporality)


def totals_path(root: str) -> str:
    """Where the drainer keeps cumulative totals for the state dir ``root``."""
    return os.path.join(root, "metrics_cumulative.json")


def __getattr__(name: str) -> Any:
    """``ExportTraceServiceResponse`` / ``ExportMetricsServiceResponse``, imported from
    ``opentelemetry-proto`` on first use (the send path never needs them)."""
    if name == "ExportTraceServiceResponse":
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        return trace_service_pb2.ExportTraceServiceResponse
    if name == "ExportMetricsServiceResponse":
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

        return metrics_service_pb2.ExportMetricsServiceResponse
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
