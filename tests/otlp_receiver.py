"""Real OTLP receivers on loopback, used by the end-to-end tests in place of a collector.

Why: the SDK's delivery path must be proven against the wire protocol the real OpenTelemetry
exporters speak (protobuf over HTTP or gRPC, compression, retry headers, partial success), not
against an in-memory exporter. These receivers listen on ``127.0.0.1`` only, on a free port
chosen by the kernel (port 0), decode what arrives with the official ``opentelemetry-proto``
messages and return plain Python data that tests can assert on.

What is here:

* :class:`OtlpHttpReceiver` - OTLP/HTTP (``/v1/traces``, ``/v1/metrics``, ``/v1/logs``) on a
  stdlib ``ThreadingHTTPServer``; gzip and deflate request bodies are decompressed.
* :class:`OtlpGrpcReceiver` - OTLP/gRPC on a ``grpcio`` server with the generated service
  registrations.
* Both share one core (:class:`OtlpReceiverBase`): request log, thread-safe failure modes
  (:class:`ReceiverMode`), decoded accessors and ``wait_for_*`` helpers.
* :class:`SilentServer` - accepts TCP connections and never answers (a hung collector).
* :func:`refused_endpoint` - a loopback URL on which nothing listens (a collector that is down).

Decoding is in module-level functions (:func:`decode_spans`, :func:`decode_metrics`,
:func:`decode_logs`) so both transports, and tests, use the same code.
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import io
import selectors
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, cast
from urllib.parse import urlsplit

import grpc
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

__all__ = [
    "LOOPBACK",
    "OtlpGrpcReceiver",
    "OtlpHttpReceiver",
    "OtlpReceiverBase",
    "ReceivedRequest",
    "ReceiverMode",
    "SilentServer",
    "any_value_to_python",
    "attributes_to_dict",
    "decode_logs",
    "decode_metrics",
    "decode_spans",
    "refused_endpoint",
]

LOOPBACK = "127.0.0.1"

Signal = Literal["traces", "metrics", "logs"]
ModeName = Literal["ok", "status", "partial_success", "slow", "fail_then_ok"]
Transport = Literal["http", "grpc"]
MetricsExpectation = int | Callable[[list[dict[str, Any]]], bool]

_MODE_NAMES: frozenset[str] = frozenset({"ok", "status", "partial_success", "slow", "fail_then_ok"})
_MAX_BODY = 64 * 1024 * 1024
_POLL_INTERVAL = 0.02

# --------------------------------------------------------------------------------------------
# Decoding (shared by both transports)
# --------------------------------------------------------------------------------------------


def any_value_to_python(value: common_pb2.AnyValue) -> Any:
    """Convert an OTLP ``AnyValue`` to str/int/float/bool/bytes, a list (arrays), a dict
    (key-value lists) or ``None`` (unset)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value_to_python(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_to_dict(value.kvlist_value.values)
    return getattr(value, kind)


def attributes_to_dict(attributes: Iterable[common_pb2.KeyValue]) -> dict[str, Any]:
    """Convert repeated OTLP ``KeyValue`` attributes to a plain ``dict``."""
    return {kv.key: any_value_to_python(kv.value) for kv in attributes}


def _enum_name(enum: Any, number: int, prefix: str) -> str:
    """Return a protobuf enum value's name without its prefix (``STATUS_CODE_OK`` -> ``OK``);
    unknown numbers come back as their decimal string."""
    try:
        name = cast(str, enum.Name(number))
    except ValueError:
        return str(number)
    return name[len(prefix) :] if name.startswith(prefix) else name


def decode_spans(request: trace_service_pb2.ExportTraceServiceRequest) -> list[dict[str, Any]]:
    """Flatten an ``ExportTraceServiceRequest`` into one plain dict per span.

    Ids are lower-case hex (``parent_span_id`` is ``""`` for a root span), ``kind`` is the enum
    number and ``kind_name`` its name (``"INTERNAL"``, ``"SERVER"``...), ``status_code`` is
    ``"UNSET"``/``"OK"``/``"ERROR"``.
    """
    spans: list[dict[str, Any]] = []
    for resource_spans in request.resource_spans:
        resource = attributes_to_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    {
                        "name": span.name,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "trace_state": span.trace_state,
                        "flags": span.flags,
                        "kind": span.kind,
                        "kind_name": _enum_name(trace_pb2.Span.SpanKind, span.kind, "SPAN_KIND_"),
                        "status_code": _enum_name(
                            trace_pb2.Status.StatusCode, span.status.code, "STATUS_CODE_"
                        ),
                        "status_message": span.status.message,
                        "start_ns": span.start_time_unix_nano,
                        "end_ns": span.end_time_unix_nano,
                        "attributes": attributes_to_dict(span.attributes),
                        "dropped_attributes_count": span.dropped_attributes_count,
                        "resource": dict(resource),
                        "scope_name": scope_spans.scope.name,
                        "scope_version": scope_spans.scope.version,
                        "events": [
                            {
                                "name": event.name,
                                "time_ns": event.time_unix_nano,
                                "attributes": attributes_to_dict(event.attributes),
                            }
                            for event in span.events
                        ],
                        "links": [
                            {
                                "trace_id": link.trace_id.hex(),
                                "span_id": link.span_id.hex(),
                                "attributes": attributes_to_dict(link.attributes),
                            }
                            for link in span.links
                        ],
                    }
                )
    return spans


def _point_base(point: Any) -> dict[str, Any]:
    return {
        "attributes": attributes_to_dict(point.attributes),
        "start_ns": point.start_time_unix_nano,
        "time_ns": point.time_unix_nano,
    }


def _optional(message: Any, name: str) -> Any:
    """Value of a proto3 ``optional`` field, or ``None`` when it is not set."""
    return getattr(message, name) if message.HasField(name) else None


def _number_point(point: metrics_pb2.NumberDataPoint) -> dict[str, Any]:
    kind = point.WhichOneof("value")
    return {**_point_base(point), "value": getattr(point, kind) if kind else None}


def _histogram_point(point: metrics_pb2.HistogramDataPoint) -> dict[str, Any]:
    return {
        **_point_base(point),
        "count": point.count,
        "sum": _optional(point, "sum"),
        "bucket_counts": list(point.bucket_counts),
        "explicit_bounds": list(point.explicit_bounds),
        "min": _optional(point, "min"),
        "max": _optional(point, "max"),
    }


def _exponential_histogram_point(
    point: metrics_pb2.ExponentialHistogramDataPoint,
) -> dict[str, Any]:
    return {
        **_point_base(point),
        "count": point.count,
        "sum": _optional(point, "sum"),
        "scale": point.scale,
        "zero_count": point.zero_count,
        "positive": {
            "offset": point.positive.offset,
            "bucket_counts": list(point.positive.bucket_counts),
        },
        "negative": {
            "offset": point.negative.offset,
            "bucket_counts": list(point.negative.bucket_counts),
        },
        "min": _optional(point, "min"),
        "max": _optional(point, "max"),
    }


def _summary_point(point: metrics_pb2.SummaryDataPoint) -> dict[str, Any]:
    return {
        **_point_base(point),
        "count": point.count,
        "sum": point.sum,
        "quantiles": [(q.quantile, q.value) for q in point.quantile_values],
    }


_POINT_DECODERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "sum": _number_point,
    "gauge": _number_point,
    "histogram": _histogram_point,
    "exponential_histogram": _exponential_histogram_point,
    "summary": _summary_point,
}


def decode_metrics(
    request: metrics_service_pb2.ExportMetricsServiceRequest,
) -> list[dict[str, Any]]:
    """Flatten an ``ExportMetricsServiceRequest`` into one plain dict per metric.

    ``type`` is the data oneof (``"sum"``, ``"gauge"``, ``"histogram"``,
    ``"exponential_histogram"``, ``"summary"``); ``temporality`` is ``"DELTA"``/``"CUMULATIVE"``
    (``None`` for gauges and summaries); ``is_monotonic`` is set for sums only. Each point has
    ``attributes``, ``start_ns``, ``time_ns`` and either ``value`` (sum/gauge) or the histogram
    fields (``count``, ``sum``, ``bucket_counts``, ``explicit_bounds``, ``min``, ``max``).
    """
    metrics: list[dict[str, Any]] = []
    for resource_metrics in request.resource_metrics:
        resource = attributes_to_dict(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                data: Any = getattr(metric, kind) if kind else None
                temporality = None
                if kind in ("sum", "histogram", "exponential_histogram"):
                    temporality = _enum_name(
                        metrics_pb2.AggregationTemporality,
                        data.aggregation_temporality,
                        "AGGREGATION_TEMPORALITY_",
                    )
                metrics.append(
                    {
                        "name": metric.name,
                        "unit": metric.unit,
                        "description": metric.description,
                        "type": kind,
                        "temporality": temporality,
                        "is_monotonic": data.is_monotonic if kind == "sum" else None,
                        "resource": dict(resource),
                        "scope_name": scope_metrics.scope.name,
                        "scope_version": scope_metrics.scope.version,
                        "points": [_POINT_DECODERS[kind](p) for p in data.data_points]
                        if kind
                        else [],
                    }
                )
    return metrics


def decode_logs(request: logs_service_pb2.ExportLogsServiceRequest) -> list[dict[str, Any]]:
    """Flatten an ``ExportLogsServiceRequest`` into one plain dict per log record."""
    records: list[dict[str, Any]] = []
    for resource_logs in request.resource_logs:
        resource = attributes_to_dict(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                records.append(
                    {
                        "body": any_value_to_python(record.body),
                        "severity_number": record.severity_number,
                        "severity_text": record.severity_text,
                        "time_ns": record.time_unix_nano,
                        "trace_id": record.trace_id.hex(),
                        "span_id": record.span_id.hex(),
                        "attributes": attributes_to_dict(record.attributes),
                        "resource": dict(resource),
                        "scope_name": scope_logs.scope.name,
                    }
                )
    return records


def _count_items(signal: Signal, message: Message) -> int:
    """Number of spans, metric data points or log records in an export request."""
    if signal == "traces":
        request = cast(trace_service_pb2.ExportTraceServiceRequest, message)
        return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    if signal == "metrics":
        mrequest = cast(metrics_service_pb2.ExportMetricsServiceRequest, message)
        total = 0
        for rm in mrequest.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    total += len(getattr(metric, kind).data_points) if kind else 0
        return total
    lrequest = cast(logs_service_pb2.ExportLogsServiceRequest, message)
    return sum(len(sl.log_records) for rl in lrequest.resource_logs for sl in rl.scope_logs)


_REQUEST_TYPES: dict[str, type[Message]] = {
    "traces": trace_service_pb2.ExportTraceServiceRequest,
    "metrics": metrics_service_pb2.ExportMetricsServiceRequest,
    "logs": logs_service_pb2.ExportLogsServiceRequest,
}


def _export_response(signal: Signal, rejected: int | None, message: str) -> Message:
    """Build the ``Export*ServiceResponse`` for ``signal``; ``rejected=None`` means full
    success (no ``partial_success`` field)."""
    if signal == "traces":
        response: Message = trace_service_pb2.ExportTraceServiceResponse()
        if rejected is not None:
            response.partial_success.rejected_spans = rejected
    elif signal == "metrics":
        response = metrics_service_pb2.ExportMetricsServiceResponse()
        if rejected is not None:
            response.partial_success.rejected_data_points = rejected
    else:
        response = logs_service_pb2.ExportLogsServiceResponse()
        if rejected is not None:
            response.partial_success.rejected_log_records = rejected
    if rejected is not None:
        response.partial_success.error_message = message
    return response


# --------------------------------------------------------------------------------------------
# Modes and the request log
# --------------------------------------------------------------------------------------------

# Semantic mapping used when a "status" mode is served over gRPC without an explicit code.
_HTTP_TO_GRPC: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.UNIMPLEMENTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    501: grpc.StatusCode.UNIMPLEMENTED,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


@dataclass(frozen=True)
class ReceiverMode:
    """How the receiver answers export requests.

    * ``"ok"`` - accept and answer success.
    * ``"status"`` - answer HTTP ``status`` (gRPC: ``grpc_code``, or a code mapped from
      ``status``), with ``Retry-After: retry_after`` when given (gRPC: a
      ``google.rpc.RetryInfo`` trailer when ``retry_after`` is a number of seconds).
    * ``"partial_success"`` - answer success with ``partial_success`` set: ``rejected`` items
      (``None`` = every item the client sent) and ``message``.
    * ``"slow"`` - sleep ``delay`` seconds, then answer success.
    * ``"fail_then_ok"`` - the first ``failures`` requests after the mode is set are answered
      like ``"status"``, the rest like ``"ok"``.

    ``only`` applies the mode to one signal ("traces", "metrics", "logs"); requests of the
    others are answered like ``"ok"`` (e.g. spans accepted, metrics answered slowly).
    """

    name: ModeName = "ok"
    status: int = 503
    retry_after: str | None = None
    rejected: int | None = None
    message: str = "rejected by the test receiver"
    delay: float = 0.0
    failures: int = 0
    grpc_code: grpc.StatusCode | None = None
    only: Signal | None = None

    def __post_init__(self) -> None:
        if self.name not in _MODE_NAMES:
            raise ValueError(f"unknown receiver mode {self.name!r}; expected {sorted(_MODE_NAMES)}")
        if self.name in ("status", "fail_then_ok") and not 100 <= self.status <= 599:
            raise ValueError(f"HTTP status out of range: {self.status}")
        if self.delay < 0 or self.failures < 0 or (self.rejected is not None and self.rejected < 0):
            raise ValueError("delay, failures and rejected must not be negative")

    def grpc_status(self) -> grpc.StatusCode:
        """The gRPC code served for a failing request in this mode."""
        if self.grpc_code is not None:
            return self.grpc_code
        return _HTTP_TO_GRPC.get(self.status, grpc.StatusCode.UNKNOWN)


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the receiver saw it (recorded for every request, accepted or not).

    ``body`` is the decompressed payload (gRPC: the request re-serialized, since grpcio hands
    the servicer a parsed message). ``accepted`` is true when the receiver answered success
    (2xx / gRPC OK), including ``partial_success`` answers, whose ``rejected`` count is kept.
    ``message`` is the parsed ``Export*ServiceRequest`` (``None`` when it did not parse).
    """

    transport: Transport
    signal: Signal | None
    path: str
    headers: dict[str, str]
    body: bytes
    time: float
    mode: str
    accepted: bool
    http_status: int | None
    grpc_code: str | None
    items: int
    rejected: int | None
    error: str | None
    message: Message | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class _Outcome:
    accepted: bool
    http_status: int
    grpc_code: grpc.StatusCode
    retry_after: str | None
    rejected: int | None
    message: str
    delay: float


_R = TypeVar("_R", bound="OtlpReceiverBase")


class OtlpReceiverBase:
    """Transport-independent core: the thread-safe mode, the request log, decoded accessors
    and polling helpers. Subclasses feed requests through :meth:`_admit`."""

    transport: ClassVar[Transport]

    def __init__(self, mode: ModeName | ReceiverMode = "ok") -> None:
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._mode = mode if isinstance(mode, ReceiverMode) else ReceiverMode(mode)
        self._failures_served = 0
        self._closing = threading.Event()
        self._closed = False

    # -- modes ---------------------------------------------------------------------------

    def set_mode(
        self,
        mode: ModeName | ReceiverMode = "ok",
        *,
        status: int = 503,
        retry_after: str | None = None,
        rejected: int | None = None,
        message: str = "rejected by the test receiver",
        delay: float = 0.0,
        failures: int = 0,
        grpc_code: grpc.StatusCode | None = None,
        only: Signal | None = None,
    ) -> None:
        """Switch how later requests are answered (thread-safe; resets the
        ``fail_then_ok`` counter). Pass a :class:`ReceiverMode` or a name plus its options."""
        new = (
            mode
            if isinstance(mode, ReceiverMode)
            else ReceiverMode(
                name=mode,
                status=status,
                retry_after=retry_after,
                rejected=rejected,
                message=message,
                delay=delay,
                failures=failures,
                grpc_code=grpc_code,
                only=only,
            )
        )
        with self._lock:
            self._mode = new
            self._failures_served = 0

    @property
    def mode(self) -> ReceiverMode:
        """The mode currently applied to new requests."""
        with self._lock:
            return self._mode

    def _decide(self, items: int, signal: Signal | None = None) -> _Outcome:
        """Apply the current mode to one request (caller holds the lock)."""
        mode = self._mode
        if mode.only is not None and signal != mode.only:
            mode = ReceiverMode("ok")
        fail = mode.name == "status"
        if mode.name == "fail_then_ok" and self._failures_served < mode.failures:
            self._failures_served += 1
            fail = True
        rejected = None
        if mode.name == "partial_success":
            rejected = items if mode.rejected is None else mode.rejected
        return _Outcome(
            accepted=not fail,
            http_status=mode.status if fail else 200,
            grpc_code=mode.grpc_status() if fail else grpc.StatusCode.OK,
            retry_after=mode.retry_after if fail else None,
            rejected=rejected,
            message=mode.message,
            delay=mode.delay if mode.name == "slow" else 0.0,
        )

    def _admit(
        self,
        *,
        signal: Signal | None,
        path: str,
        headers: dict[str, str],
        body: bytes,
        message: Message | None,
        reject: tuple[int, str] | None = None,
    ) -> _Outcome:
        """Record one request and decide its answer. ``reject=(http_status, reason)`` marks a
        protocol-level refusal (bad path, encoding or body) that bypasses the mode."""
        items = _count_items(signal, message) if signal and message is not None else 0
        with self._lock:
            if reject is not None:
                status, reason = reject
                outcome = _Outcome(
                    accepted=False,
                    http_status=status,
                    grpc_code=_HTTP_TO_GRPC.get(status, grpc.StatusCode.UNKNOWN),
                    retry_after=None,
                    rejected=None,
                    message=reason,
                    delay=0.0,
                )
            else:
                outcome = self._decide(items, signal)
            self._requests.append(
                ReceivedRequest(
                    transport=self.transport,
                    signal=signal,
                    path=path,
                    headers=headers,
                    body=body,
                    time=time.time(),
                    mode=self._mode.name,
                    accepted=outcome.accepted,
                    http_status=outcome.http_status if self.transport == "http" else None,
                    grpc_code=outcome.grpc_code.name if self.transport == "grpc" else None,
                    items=items,
                    rejected=outcome.rejected,
                    error=reject[1] if reject else None,
                    message=message,
                )
            )
        return outcome

    def _pause(self, seconds: float) -> None:
        """Sleep for a slow answer, waking early when the receiver closes."""
        if seconds > 0:
            self._closing.wait(seconds)

    # -- accessors -----------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget all recorded requests (the mode is kept)."""
        with self._lock:
            self._requests.clear()

    def raw_bodies(self) -> list[bytes]:
        """Decompressed bodies of all requests (accepted or not), for leak scanning."""
        return [r.body for r in self.requests]

    def _messages(self, signal: Signal, include_rejected: bool) -> list[Any]:
        return [
            r.message
            for r in self.requests
            if r.signal == signal and r.message is not None and (r.accepted or include_rejected)
        ]

    def spans(self, *, include_rejected: bool = False) -> list[dict[str, Any]]:
        """Decoded spans (see :func:`decode_spans`) from accepted requests, in arrival order;
        ``include_rejected=True`` adds those from requests that were answered with a failure."""
        return [s for m in self._messages("traces", include_rejected) for s in decode_spans(m)]

    def metrics(self, *, include_rejected: bool = False) -> list[dict[str, Any]]:
        """Decoded metrics (see :func:`decode_metrics`), one entry per metric per request."""
        return [x for m in self._messages("metrics", include_rejected) for x in decode_metrics(m)]

    def logs(self, *, include_rejected: bool = False) -> list[dict[str, Any]]:
        """Decoded log records (see :func:`decode_logs`)."""
        return [x for m in self._messages("logs", include_rejected) for x in decode_logs(m)]

    def points(self, name: str, *, include_rejected: bool = False) -> list[dict[str, Any]]:
        """All data points of the metric called ``name``, across requests, in order."""
        return [
            p
            for metric in self.metrics(include_rejected=include_rejected)
            if metric["name"] == name
            for p in metric["points"]
        ]

    # -- waiting -------------------------------------------------------------------------

    def _summary(self) -> str:
        lines = [
            f"  {r.transport} {r.path} mode={r.mode} accepted={r.accepted} "
            f"status={r.http_status if r.transport == 'http' else r.grpc_code} items={r.items}"
            + (f" error={r.error!r}" if r.error else "")
            for r in self.requests
        ]
        return "\n".join(lines) if lines else "  (no requests)"

    def _wait(
        self,
        fetch: Callable[[], list[Any]],
        done: Callable[[list[Any]], bool],
        timeout: float,
        what: str,
    ) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            got = fetch()
            if done(got):
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"waited {timeout}s for {what}; got {len(got)}: {got!r}\n"
                    f"requests received:\n{self._summary()}"
                )
            time.sleep(_POLL_INTERVAL)

    def wait_for_requests(self, n: int = 1, timeout: float = 10.0) -> list[ReceivedRequest]:
        """Poll until at least ``n`` requests (any outcome) arrived; return all of them."""
        return self._wait(lambda: self.requests, lambda g: len(g) >= n, timeout, f"{n} requests")

    def wait_for_spans(self, n: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Poll until at least ``n`` accepted spans arrived; return them, or raise
        ``AssertionError`` listing what did arrive."""
        return self._wait(self.spans, lambda g: len(g) >= n, timeout, f"{n} spans")

    def wait_for_metrics(
        self, expect: MetricsExpectation = 1, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Poll until ``expect`` holds for the accepted metrics: an ``int`` means at least that
        many metric entries, a callable is a predicate over :meth:`metrics`' list. Returns the
        list, or raises ``AssertionError`` listing what did arrive."""
        if callable(expect):
            return self._wait(self.metrics, lambda g: bool(expect(g)), timeout, "metrics predicate")
        return self._wait(self.metrics, lambda g: len(g) >= expect, timeout, f"{expect} metrics")

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The loopback port the receiver listens on."""
        raise NotImplementedError

    @property
    def endpoint(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT``."""
        return f"http://{LOOPBACK}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        raise NotImplementedError

    def __enter__(self: _R) -> _R:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# OTLP/HTTP
# --------------------------------------------------------------------------------------------

_HTTP_PATHS: dict[str, Signal] = {
    "/v1/traces": "traces",
    "/v1/metrics": "metrics",
    "/v1/logs": "logs",
}
_PROTOBUF = "application/x-protobuf"


class _HttpReject(Exception):
    """A request refused before it reaches the mode (bad framing, encoding or body)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _read_chunked(stream: io.BufferedIOBase) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        line = stream.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _HttpReject(400, "bad chunk size") from None
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # discard trailers
            return b"".join(chunks)
        total += size
        if total > _MAX_BODY:
            raise _HttpReject(413, "body too large")
        chunks.append(stream.read(size))
        stream.readline(1024)  # CRLF after the chunk


def _read_body(handler: http.server.BaseHTTPRequestHandler) -> bytes:
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        return _read_chunked(handler.rfile)
    length = handler.headers.get("Content-Length")
    if length is None:
        raise _HttpReject(411, "Content-Length required")
    try:
        size = int(length)
    except ValueError:
        raise _HttpReject(400, f"bad Content-Length {length!r}") from None
    if size < 0 or size > _MAX_BODY:
        raise _HttpReject(413, "body too large")
    return handler.rfile.read(size)


def _decompress(body: bytes, encoding: str) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate as zlib or raw, identity)."""
    name = encoding.strip().lower()
    try:
        if name in ("", "identity", "none"):
            return body
        if name == "gzip":
            return gzip.decompress(body)
        if name == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)
    except (OSError, EOFError, zlib.error) as error:
        raise _HttpReject(400, f"cannot decode {name} body: {error}") from None
    raise _HttpReject(415, f"unsupported Content-Encoding {encoding!r}")


class _HttpServer(http.server.ThreadingHTTPServer):
    """Threading server that remembers its live connections so ``close`` can cut them."""

    daemon_threads = True
    allow_reuse_address = False
    request_queue_size = 128  # the default backlog (5) makes bursts of clients wait for SYN retries

    def __init__(
        self, receiver: OtlpHttpReceiver, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.receiver = receiver
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((LOOPBACK, port), _OtlpHttpHandler)
        self._tls = ssl_context is not None
        if ssl_context is not None:
            # The handshake runs on the handler thread's first read, so a client that never
            # completes it cannot stall the accept loop.
            self.socket = ssl_context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def handle_error(self, request: Any, client_address: Any) -> None:
        """With TLS, quiet: clients that refuse our certificate are what TLS tests expect."""
        if not self._tls:
            super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _OtlpHttpHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "otlp-test-receiver"
    timeout = 30  # an idle keep-alive connection is dropped after this many seconds

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log."""

    def do_POST(self) -> None:
        cast(_HttpServer, self.server).receiver._handle(self)

    def _not_allowed(self) -> None:
        body = b"only POST is supported"
        self.send_response(405)
        self.send_header("Allow", "POST")
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_allowed


class OtlpHttpReceiver(OtlpReceiverBase):
    """OTLP/HTTP receiver (protobuf encoding) on ``127.0.0.1``.

    Accepts ``POST /v1/traces``, ``/v1/metrics`` and ``/v1/logs`` with
    ``Content-Type: application/x-protobuf`` and an optional gzip/deflate ``Content-Encoding``,
    and answers with the signal's ``Export*ServiceResponse`` (or a ``google.rpc.Status`` body
    for failures), as a collector would. Use as a context manager::

        with OtlpHttpReceiver() as rx:
            exporter = OTLPSpanExporter(endpoint=rx.traces_url)
    """

    transport: ClassVar[Transport] = "http"

    def __init__(
        self,
        mode: ModeName | ReceiverMode = "ok",
        *,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(mode)
        self._tls = ssl_context is not None
        self._server = _HttpServer(self, port, ssl_context)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"otlp-http-receiver-{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The loopback port the receiver listens on."""
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """Base URL: ``http://127.0.0.1:PORT``, or ``https://localhost:PORT`` when serving
        TLS (``ssl_context=``; the test certificate names ``localhost``)."""
        if self._tls:
            return f"https://localhost:{self.port}"
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def traces_url(self) -> str:
        """Full URL for ``OTLPSpanExporter(endpoint=...)``."""
        return f"{self.endpoint}/v1/traces"

    @property
    def metrics_url(self) -> str:
        """Full URL for ``OTLPMetricExporter(endpoint=...)``."""
        return f"{self.endpoint}/v1/metrics"

    @property
    def logs_url(self) -> str:
        """Full URL for ``OTLPLogExporter(endpoint=...)``."""
        return f"{self.endpoint}/v1/logs"

    def _handle(self, handler: _OtlpHttpHandler) -> None:
        path = urlsplit(handler.path).path
        signal = _HTTP_PATHS.get(path)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        body = b""
        framed = False  # whether the body was fully read, so the connection can be reused
        message: Message | None = None
        reject: tuple[int, str] | None = None
        try:
            body = _read_body(handler)
            framed = True
            body = _decompress(body, headers.get("content-encoding", ""))
            if signal is None:
                raise _HttpReject(404, f"unknown path {path!r}")
            content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if content_type != _PROTOBUF:
                raise _HttpReject(415, f"unsupported Content-Type {content_type!r}")
            parsed = _REQUEST_TYPES[signal]()
            try:
                parsed.ParseFromString(body)
            except DecodeError as error:
                raise _HttpReject(400, f"cannot parse {signal} request: {error}") from None
            message = parsed
        except _HttpReject as error:
            reject = (error.status, error.reason)
            handler.close_connection = not framed
        outcome = self._admit(
            signal=signal, path=path, headers=headers, body=body, message=message, reject=reject
        )
        self._pause(outcome.delay)
        if outcome.accepted and signal is not None:
            payload = _export_response(signal, outcome.rejected, outcome.message)
        else:
            payload = status_pb2.Status(code=outcome.grpc_code.value[0], message=outcome.message)
        extra = {"Retry-After": outcome.retry_after} if outcome.retry_after is not None else {}
        self._respond(handler, outcome.http_status, payload.SerializeToString(), extra)

    @staticmethod
    def _respond(
        handler: _OtlpHttpHandler, status: int, body: bytes, extra: Mapping[str, str]
    ) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", _PROTOBUF)
            handler.send_header("Content-Length", str(len(body)))
            for name, value in extra.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
            handler.wfile.flush()
        except OSError:  # the client gave up (e.g. timed out during a "slow" answer)
            handler.close_connection = True

    def close(self) -> None:
        """Stop serving, cut open keep-alive connections and release the port (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._server.shutdown()
        self._server.cut_connections()
        self._server.server_close()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------------------------
# OTLP/gRPC
# --------------------------------------------------------------------------------------------

_GRPC_PATHS: dict[Signal, str] = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}


def _retry_info(retry_after: str) -> bytes | None:
    """Serialize a ``google.rpc.RetryInfo`` for a numeric ``Retry-After`` value."""
    try:
        seconds = float(retry_after)
    except ValueError:
        return None
    info = error_details_pb2.RetryInfo()
    info.retry_delay.seconds = int(seconds)
    info.retry_delay.nanos = round((seconds - int(seconds)) * 1e9)
    return cast(bytes, info.SerializeToString())


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpGrpcReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:
        return self._receiver._handle("traces", request, context)


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OtlpGrpcReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:
        return self._receiver._handle("metrics", request, context)


class _LogsServicer(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, receiver: OtlpGrpcReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:
        return self._receiver._handle("logs", request, context)


class OtlpGrpcReceiver(OtlpReceiverBase):
    """OTLP/gRPC receiver on ``127.0.0.1`` (insecure), registering the trace, metrics and logs
    services from ``opentelemetry-proto``. Same modes and accessors as
    :class:`OtlpHttpReceiver`; ``"status"`` is served as a gRPC error code. Point
    ``grpc`` exporters at :attr:`endpoint` (``http://127.0.0.1:PORT``)."""

    transport: ClassVar[Transport] = "grpc"

    def __init__(self, mode: ModeName | ReceiverMode = "ok", *, port: int = 0) -> None:
        super().__init__(mode)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="otlp-grpc-receiver"),
            options=[("grpc.so_reuseport", 0)],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _TraceServicer(self), self._server
        )
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
            _MetricsServicer(self), self._server
        )
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsServicer(self), self._server)
        self._port: int = self._server.add_insecure_port(f"{LOOPBACK}:{port}")
        if not self._port:
            raise OSError(f"cannot bind gRPC receiver to {LOOPBACK}:{port}")
        self._server.start()

    @property
    def port(self) -> int:
        """The loopback port the receiver listens on."""
        return self._port

    def _handle(self, signal: Signal, request: Message, context: grpc.ServicerContext) -> Message:
        headers: dict[str, str] = {}
        for key, value in context.invocation_metadata():
            headers[key.lower()] = value.hex() if isinstance(value, bytes) else value
        outcome = self._admit(
            signal=signal,
            path=_GRPC_PATHS[signal],
            headers=headers,
            body=request.SerializeToString(),
            message=request,
        )
        self._pause(outcome.delay)
        if not outcome.accepted:
            if outcome.retry_after is not None:
                info = _retry_info(outcome.retry_after)
                if info is not None:
                    context.set_trailing_metadata((("google.rpc.retryinfo-bin", info),))
            context.abort(outcome.grpc_code, outcome.message)
        return _export_response(signal, outcome.rejected, outcome.message)

    def close(self) -> None:
        """Stop the server (in-flight calls are cancelled) and release the port."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._server.stop(grace=None).wait(timeout=5)


# --------------------------------------------------------------------------------------------
# Broken collectors
# --------------------------------------------------------------------------------------------


class SilentServer:
    """A TCP listener on ``127.0.0.1`` that accepts connections, reads and discards whatever
    arrives, and never answers; sockets stay open until :meth:`close`. Models a hung collector
    so tests can prove that exporters give up on their own timeout."""

    def __init__(self) -> None:
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._accepted = 0
        self._bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="silent-server", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                sock = cast(socket.socket, key.fileobj)
                if sock is self._listener:
                    try:
                        connection, _ = sock.accept()
                    except OSError:
                        continue
                    connection.setblocking(False)
                    self._selector.register(connection, selectors.EVENT_READ)
                    with self._lock:
                        self._sockets.append(connection)
                        self._accepted += 1
                    continue
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if data:
                    with self._lock:
                        self._bytes += len(data)
                else:  # the peer hung up; stop watching, keep our end until close()
                    self._selector.unregister(sock)

    @property
    def port(self) -> int:
        """The loopback port the server listens on."""
        return cast(int, self._listener.getsockname()[1])

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        with self._lock:
            return self._accepted

    @property
    def bytes_received(self) -> int:
        """How many bytes clients sent (and were ignored)."""
        with self._lock:
            return self._bytes

    def close(self) -> None:
        """Stop accepting and close every socket (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._selector.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in [*sockets, self._listener]:
            sock.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def refused_endpoint() -> str:
    """``http://127.0.0.1:PORT`` where nothing listens: a port is bound (never listened on)
    and released, so connecting to it is refused. Models a collector that is down."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port = cast(int, sock.getsockname()[1])
    return f"http://{LOOPBACK}:{port}"
