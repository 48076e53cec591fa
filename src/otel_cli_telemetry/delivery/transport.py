"""OTLP transports with the outcome detail the drainer needs.

HTTP (the default) encodes the SDK objects with OpenTelemetry's own protobuf encoders and
POSTs them itself, because the breaker needs what the SDK exporter hides: the status code,
``Retry-After``, and OTLP partial success. It honours the standard variables
(``OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]ENDPOINT``, ``_HEADERS``, ``_COMPRESSION``,
``_CERTIFICATE``, ``_CLIENT_CERTIFICATE``, ``_CLIENT_KEY``, ``_TIMEOUT`` in seconds) and the
usual proxy variables. gRPC uses the SDK's gRPC exporters (install the ``grpc`` extra).
"""

from __future__ import annotations

import gzip
import os
import ssl
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.util.re import parse_env_headers

from .._version import __version__

DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 10.0
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = f"otel-cli-telemetry/{__version__}"

OK, RETRY, REJECT, TOO_LARGE = "ok", "retry", "reject", "too_large"


@dataclass(frozen=True)
class Outcome:
    """What one export request came to."""

    kind: str  # OK | RETRY (keep data, open breaker) | REJECT (drop data) | TOO_LARGE
    status: int | None = None
    retry_after_s: float | None = None
    rejected: int = 0  # partial success: items the backend refused
    error: str = ""
    latency_ms: float = 0.0


def _env(environ: Mapping[str, str], signal: str, name: str) -> str:
    specific = environ.get(f"OTEL_EXPORTER_OTLP_{signal}_{name}", "").strip()
    return specific or environ.get(f"OTEL_EXPORTER_OTLP_{name}", "").strip()


def request_timeout(environ: Mapping[str, str]) -> float:
    """Per-request timeout: ``OTEL_EXPORTER_OTLP_TIMEOUT`` (seconds, as Python reads it), bounded."""
    raw = environ.get("OTEL_EXPORTER_OTLP_TIMEOUT", "").strip()
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        value = DEFAULT_TIMEOUT_S
    return max(0.2, min(value, MAX_TIMEOUT_S))


def signal_url(base: str | None, environ: Mapping[str, str], signal: str) -> str | None:
    """The URL for ``signal`` ("TRACES"/"METRICS"): per-signal variable verbatim, else base + path."""
    specific = environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "").strip()
    if specific and not base:
        return specific
    root = base or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not root:
        return specific or None
    return root.rstrip("/") + "/v1/" + signal.lower()


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


class HttpTransport:
    """OTLP/HTTP with protobuf bodies."""

    def __init__(self, base: str | None, environ: Mapping[str, str] | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        self.urls = {s: signal_url(base, env, s) for s in ("TRACES", "METRICS")}
        self.timeout = request_timeout(env)
        self._headers = {s: self._headers_for(env, s) for s in ("TRACES", "METRICS")}
        self._compression = {s: _env(env, s, "COMPRESSION").lower() for s in ("TRACES", "METRICS")}
        self._ssl = {s: self._ssl_for(env, s) for s in ("TRACES", "METRICS")}

    @staticmethod
    def _headers_for(env: Mapping[str, str], signal: str) -> dict[str, str]:
        headers = dict(parse_env_headers(env.get("OTEL_EXPORTER_OTLP_HEADERS", ""), liberal=True))
        headers.update(
            parse_env_headers(env.get(f"OTEL_EXPORTER_OTLP_{signal}_HEADERS", ""), liberal=True)
        )
        return headers

    @staticmethod
    def _ssl_for(env: Mapping[str, str], signal: str) -> ssl.SSLContext | None:
        ca = _env(env, signal, "CERTIFICATE")
        cert = _env(env, signal, "CLIENT_CERTIFICATE")
        key = _env(env, signal, "CLIENT_KEY")
        if not (ca or cert):
            return None
        context = ssl.create_default_context(cafile=ca or None)
        if cert:
            context.load_cert_chain(cert, key or None)
        return context

    def send_traces(self, spans: Sequence[ReadableSpan], timeout: float | None = None) -> Outcome:
        """Export spans; partial success is read from the response."""
        body = encode_spans(spans).SerializeToString()
        outcome, payload = self._post("TRACES", body, timeout)
        if outcome.kind == OK and payload:
            response = ExportTraceServiceResponse.FromString(payload)
            rejected = response.partial_success.rejected_spans
            if rejected:
                return Outcome(
                    OK,
                    outcome.status,
                    rejected=rejected,
                    error=response.partial_success.error_message[:200],
                    latency_ms=outcome.latency_ms,
                )
        return outcome

    def send_metrics(self, data: MetricsData, timeout: float | None = None) -> Outcome:
        """Export metrics; partial success is read from the response."""
        body = encode_metrics(data).SerializeToString()
        outcome, payload = self._post("METRICS", body, timeout)
        if outcome.kind == OK and payload:
            response = ExportMetricsServiceResponse.FromString(payload)
            rejected = response.partial_success.rejected_data_points
            if rejected:
                return Outcome(
                    OK,
                    outcome.status,
                    rejected=rejected,
                    error=response.partial_success.error_message[:200],
                    latency_ms=outcome.latency_ms,
                )
        return outcome

    def _post(self, signal: str, body: bytes, timeout: float | None) -> tuple[Outcome, bytes]:
        url = self.urls[signal]
        if not url:
            return Outcome(OK, error=f"no {signal.lower()} endpoint configured"), b""
        headers = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": USER_AGENT,
            **self._headers[signal],
        }
        compression = self._compression[signal]
        if compression == "gzip":
            body = gzip.compress(body, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        elif compression == "deflate":
            body = zlib.compress(body)
            headers["Content-Encoding"] = "deflate"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        wait = max(0.05, min(timeout if timeout is not None else self.timeout, self.timeout))
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=wait, context=self._ssl[signal]) as reply:  # noqa: S310
                payload = reply.read(4 * 1024 * 1024)
                latency = (time.perf_counter() - started) * 1000
                return Outcome(OK, reply.status, latency_ms=latency), payload
        except urllib.error.HTTPError as exc:
            latency = (time.perf_counter() - started) * 1000
            status = exc.code
            if status in RETRYABLE_STATUS:
                return Outcome(
                    RETRY,
                    status,
                    parse_retry_after(exc.headers.get("Retry-After")),
                    error=f"HTTP {status}",
                    latency_ms=latency,
                ), b""
            if status == 413:
                return Outcome(TOO_LARGE, status, error="HTTP 413", latency_ms=latency), b""
            if status in (401, 403, 404, 407):
                # Configuration, not data: keep the records until it is fixed.
                return Outcome(RETRY, status, error=f"HTTP {status}", latency_ms=latency), b""
            return Outcome(REJECT, status, error=f"HTTP {status}", latency_ms=latency), b""
        except (OSError, ssl.SSLError, ValueError) as exc:
            latency = (time.perf_counter() - started) * 1000
            return Outcome(
                RETRY, error=f"{type(exc).__name__}: {exc}"[:200], latency_ms=latency
            ), b""


class GrpcTransport:
    """OTLP/gRPC through the SDK's gRPC exporters (no status detail: failures retry)."""

    def __init__(self, base: str | None, environ: Mapping[str, str] | None = None) -> None:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        env = dict(os.environ if environ is None else environ)
        self.timeout = request_timeout(env)
        self._spans = OTLPSpanExporter(endpoint=base, timeout=self.timeout)
        self._metrics = OTLPMetricExporter(endpoint=base, timeout=self.timeout)

    def send_traces(self, spans: Sequence[ReadableSpan], timeout: float | None = None) -> Outcome:
        """Export spans over gRPC."""
        from opentelemetry.sdk.trace.export import SpanExportResult

        started = time.perf_counter()
        result = self._spans.export(spans)
        latency = (time.perf_counter() - started) * 1000
        if result == SpanExportResult.SUCCESS:
            return Outcome(OK, latency_ms=latency)
        return Outcome(RETRY, error="gRPC export failed", latency_ms=latency)

    def send_metrics(self, data: MetricsData, timeout: float | None = None) -> Outcome:
        """Export metrics over gRPC."""
        from opentelemetry.sdk.metrics.export import MetricExportResult

        started = time.perf_counter()
        result = self._metrics.export(data, timeout_millis=self.timeout * 1000)
        latency = (time.perf_counter() - started) * 1000
        if result == MetricExportResult.SUCCESS:
            return Outcome(OK, latency_ms=latency)
        return Outcome(RETRY, error="gRPC export failed", latency_ms=latency)

    def close(self) -> None:
        """Shut the exporters' channels."""
        self._spans.shutdown()
        self._metrics.shutdown()


def make_transport(base: str | None, protocol: str) -> HttpTransport | GrpcTransport:
    """The transport for the configured protocol."""
    if protocol == "grpc":
        return GrpcTransport(base)
    return HttpTransport(base)
