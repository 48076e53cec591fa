"""OTLP transports with the outcome detail the drainer needs.

HTTP (the default) encodes the SDK objects with OpenTelemetry's own protobuf encoders and
POSTs them itself, because the breaker needs what the SDK exporter hides: the status code,
``Retry-After``, and OTLP partial success. It honours the standard variables
(``OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]ENDPOINT``, ``_HEADERS``, ``_COMPRESSION``,
``_CERTIFICATE``, ``_CLIENT_CERTIFICATE``, ``_CLIENT_KEY``, ``_TIMEOUT`` in milliseconds as
the specification says, ``OTEL_{TRACES,METRICS}_EXPORTER=none``) as resolved by
:mod:`otel_cli_telemetry.config`, and the usual proxy variables. gRPC uses the SDK's gRPC
exporters (install the ``grpc`` extra).

What each answer means for the data (the drainer acts on :class:`Outcome`):

- 2xx: accepted, deleted; OTLP partial success counts the refused items as drops. A 2xx
  HTML page (a captive portal, a proxy's login page) is not an OTLP answer: kept, retried.
- 408/429/5xx: kept, breaker opened, for ``Retry-After`` (seconds or HTTP date) if given.
- 401/403/404/407 and redirects: a configuration problem, not the data's: kept, retried
  later (redirects are never followed: urllib would turn a POST into a GET and a portal's
  200 into a false "accepted").
- 413: the batch is split; a single record too large is dropped (counted).
- Other 4xx (400: the backend cannot parse it): the batch is dropped (counted).
- Network errors, timeouts, TLS errors, malformed answers: kept, breaker opened.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import os
import ssl
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

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


def request_timeout(environ: Mapping[str, str], signal: str = "TRACES") -> float:
    """Per-request timeout in seconds (see :func:`otel_cli_telemetry.config.resolve_timeout`)."""
    from ..config import resolve_timeout

    return resolve_timeout(environ, signal)


def signal_url(base: str | None, environ: Mapping[str, str], signal: str) -> str | None:
    """The URL for ``signal`` ("TRACES"/"METRICS").

    ``base`` is an explicit base URL (``init(endpoint=...)``): base + ``/v1/<signal>``.
    Without it, the standard variables: the per-signal one verbatim, else
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/<signal>``. A ``base`` that is in fact the value
    of a per-signal variable (``config.resolve_endpoint`` returns it as "the endpoint") is
    treated as not given, so it is not suffixed a second time. A signal whose
    ``OTEL_<SIGNAL>_EXPORTER`` is ``none`` has no URL: it is not sent.
    """
    from ..config import exporter_enabled

    if not exporter_enabled(environ, signal):
        return None
    per_signal = {
        s: environ.get(f"OTEL_EXPORTER_OTLP_{s}_ENDPOINT", "").strip()
        for s in ("TRACES", "METRICS")
    }
    if base and base.strip() in {v for v in per_signal.values() if v}:
        base = None
    if base:
        return base.rstrip("/") + "/v1/" + signal.lower()
    if per_signal.get(signal):
        return per_signal[signal]
    root = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not root:
        return None
    return root.rstrip("/") + "/v1/" + signal.lower()


def status_kind(status: int) -> str:
    """What an HTTP error status means for the data it answered.

    413: split the batch. 408/429/5xx: retry later (the breaker honours ``Retry-After``).
    Redirects, 401/403/404/407: configuration, not data: keep the records until it is fixed.
    Any other 4xx: the backend refuses the data itself; retrying cannot help, so drop it.
    """
    if status == 413:
        return TOO_LARGE
    if status in RETRYABLE_STATUS or status >= 500:
        return RETRY
    if status in (401, 403, 404, 407) or 300 <= status < 400:
        return RETRY
    if 400 <= status < 500:
        return REJECT
    return RETRY


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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: the 3xx surfaces as an ``HTTPError`` (data kept)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class HttpTransport:
    """OTLP/HTTP with protobuf bodies."""

    def __init__(self, base: str | None, environ: Mapping[str, str] | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        self.urls = {s: signal_url(base, env, s) for s in ("TRACES", "METRICS")}
        self.timeouts = {s: request_timeout(env, s) for s in ("TRACES", "METRICS")}
        self.timeout = max(self.timeouts.values())
        self._headers = {s: self._headers_for(env, s) for s in ("TRACES", "METRICS")}
        self._compression = {s: _env(env, s, "COMPRESSION").lower() for s in ("TRACES", "METRICS")}
        self._ssl_ca: dict[str, str] = {}
        self._ssl = {s: self._ssl_for(env, s) for s in ("TRACES", "METRICS")}
        self._openers = {
            s: urllib.request.build_opener(
                urllib.request.HTTPSHandler(context=self._ssl[s]), _NoRedirect()
            )
            for s in ("TRACES", "METRICS")
        }

    @property
    def configured(self) -> bool:
        """Whether there is anywhere to send to (else the drainer keeps everything)."""
        return any(self.urls.values())

    def tls_summary(self, signal: str = "TRACES") -> str:
        """How ``signal`` is secured, for ``doctor``."""
        url = self.urls.get(signal) or ""
        if not url.startswith("https://"):
            return "none (plain http)"
        ca = self._ssl_ca.get(signal)
        return f"verified against {ca}" if ca else "verified against the system store"

    @staticmethod
    def _headers_for(env: Mapping[str, str], signal: str) -> dict[str, str]:
        headers = dict(parse_env_headers(env.get("OTEL_EXPORTER_OTLP_HEADERS", ""), liberal=True))
        headers.update(
            parse_env_headers(env.get(f"OTEL_EXPORTER_OTLP_{signal}_HEADERS", ""), liberal=True)
        )
        return headers

    def _ssl_for(self, env: Mapping[str, str], signal: str) -> ssl.SSLContext | None:
        """A context with the custom CA / client cert, or None for the system store."""
        ca = _env(env, signal, "CERTIFICATE")
        self._ssl_ca[signal] = ca
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
        return self._export("TRACES", body, timeout, ExportTraceServiceResponse, "rejected_spans")

    def send_metrics(self, data: MetricsData, timeout: float | None = None) -> Outcome:
        """Export metrics; partial success is read from the response."""
        body = encode_metrics(data).SerializeToString()
        return self._export(
            "METRICS", body, timeout, ExportMetricsServiceResponse, "rejected_data_points"
        )

    def _export(
        self,
        signal: str,
        body: bytes,
        timeout: float | None,
        response_type: Any,
        rejected_field: str,
    ) -> Outcome:
        """POST one request; an accepted one may still report items it refused."""
        outcome, payload = self._post(signal, body, timeout)
        if outcome.kind != OK or not payload:
            return outcome
        try:
            partial = response_type.FromString(payload).partial_success
        except Exception:  # DecodeError: accepted; the detail is unreadable
            return outcome
        rejected = getattr(partial, rejected_field)
        if not rejected:
            return outcome
        return Outcome(
            OK,
            outcome.status,
            rejected=rejected,
            error=partial.error_message[:200],
            latency_ms=outcome.latency_ms,
        )

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
        limit = self.timeouts[signal]
        wait = max(0.05, min(timeout if timeout is not None else limit, limit))
        started = time.perf_counter()
        try:
            with self._openers[signal].open(request, timeout=wait) as reply:
                payload = reply.read(4 * 1024 * 1024)
                latency = (time.perf_counter() - started) * 1000
                content_type = (reply.headers.get("Content-Type") or "").lower()
                if content_type.startswith(("text/html", "application/xhtml")):
                    return Outcome(
                        RETRY,
                        reply.status,
                        error=f"HTTP {reply.status} with an HTML page: not an OTLP endpoint",
                        latency_ms=latency,
                    ), b""
                return Outcome(OK, reply.status, latency_ms=latency), payload
        except urllib.error.HTTPError as exc:
            latency = (time.perf_counter() - started) * 1000
            kind = status_kind(exc.code)
            retry_after = (
                parse_retry_after(exc.headers.get("Retry-After")) if kind == RETRY else None
            )
            return Outcome(
                kind, exc.code, retry_after, error=f"HTTP {exc.code}", latency_ms=latency
            ), b""
        except (OSError, ssl.SSLError, ValueError, http.client.HTTPException) as exc:
            latency = (time.perf_counter() - started) * 1000
            return Outcome(
                RETRY, error=f"{type(exc).__name__}: {exc}"[:200], latency_ms=latency
            ), b""


class _QuietThreads(logging.Filter):
    """Drops log records emitted by threads exporting for us.

    The SDK's gRPC exporter logs each transient error and failure; delivering in-process
    (CI, ``flush``) those would reach the user's terminal through the host's handlers or
    logging's last-resort handler. Other threads (the host's own exporters) are untouched.
    """

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread not in self.threads


_QUIET = _QuietThreads()
_GRPC_LOGGER = "opentelemetry.exporter.otlp.proto.grpc.exporter"


class GrpcTransport:
    """OTLP/gRPC through the SDK's gRPC exporters (no status detail: failures retry)."""

    def __init__(self, base: str | None, environ: Mapping[str, str] | None = None) -> None:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        logger = logging.getLogger(_GRPC_LOGGER)
        if _QUIET not in logger.filters:
            logger.addFilter(_QUIET)
        env = dict(os.environ if environ is None else environ)
        self.timeout = request_timeout(env)
        self._spans = OTLPSpanExporter(endpoint=base, timeout=self.timeout)
        self._metrics = OTLPMetricExporter(endpoint=base, timeout=self.timeout)

    configured = True

    def tls_summary(self, signal: str = "TRACES") -> str:
        """How the channel is secured, for ``doctor`` (as the SDK's exporter decides)."""
        return "as configured for the SDK's gRPC exporter (OTEL_EXPORTER_OTLP_INSECURE, ...)"

    @staticmethod
    def _quietly(call: Any, *args: Any, **kwargs: Any) -> Any:
        import threading

        ident = threading.get_ident()
        _QUIET.threads.add(ident)
        try:
            return call(*args, **kwargs)
        finally:
            _QUIET.threads.discard(ident)

    def send_traces(self, spans: Sequence[ReadableSpan], timeout: float | None = None) -> Outcome:
        """Export spans over gRPC."""
        from opentelemetry.sdk.trace.export import SpanExportResult

        started = time.perf_counter()
        result = self._quietly(self._spans.export, spans)
        latency = (time.perf_counter() - started) * 1000
        if result == SpanExportResult.SUCCESS:
            return Outcome(OK, latency_ms=latency)
        return Outcome(RETRY, error="gRPC export failed", latency_ms=latency)

    def send_metrics(self, data: MetricsData, timeout: float | None = None) -> Outcome:
        """Export metrics over gRPC."""
        from opentelemetry.sdk.metrics.export import MetricExportResult

        started = time.perf_counter()
        result = self._quietly(self._metrics.export, data, timeout_millis=self.timeout * 1000)
        latency = (time.perf_counter() - started) * 1000
        if result == MetricExportResult.SUCCESS:
            return Outcome(OK, latency_ms=latency)
        return Outcome(RETRY, error="gRPC export failed", latency_ms=latency)

    def close(self) -> None:
        """Shut the exporters' channels."""
        self._spans.shutdown()
        self._metrics.shutdown()


def make_transport(base: str | None, protocol: str) -> HttpTransport | GrpcTransport:
    """The transport for the configured protocol (``grpc`` only with the ``grpc`` extra
    installed; else OTLP/HTTP, see :func:`otel_cli_telemetry.config.delivery_protocol`)."""
    from ..config import delivery_protocol

    if delivery_protocol(protocol) == "grpc":
        return GrpcTransport(base)
    return HttpTransport(base)
