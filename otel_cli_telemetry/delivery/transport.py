"""OTLP transports with the outcome detail the drainer needs.

HTTP (the default) is the lean path: spool records are written as OTLP protobuf directly
(``encode``, no SDK objects, no SDK import) and POSTed here, because the breaker needs what
the SDK exporter hides: the status code, ``Retry-After``, and OTLP partial success. It
honours the standard variables (``OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]ENDPOINT``,
``_HEADERS``, ``_COMPRESSION``, ``_CERTIFICATE``, ``_CLIENT_CERTIFICATE``, ``_CLIENT_KEY``,
``_TIMEOUT`` in milliseconds as the specification says, ``OTEL_{TRACES,METRICS}_EXPORTER=none``)
as :mod:`otel_cli_telemetry.config` resolves them, and the usual proxy variables. gRPC uses
the SDK's gRPC exporters (install the ``grpc`` extra; without it, OTLP/HTTP is used), fed
with SDK objects (``convert``).

What each answer means for the data (the drainer acts on :class:`Outcome`):

- 2xx: accepted, deleted; OTLP partial success reports the refused items (the drainer
  counts them as dropped records). A 2xx
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

import os
import time
from collections.abc import Iterable, Mapping, Sequence

from .._version import __version__
from . import encode

TYPE_CHECKING = False  # typing costs a process that has not loaded it ~40 M instructions
if TYPE_CHECKING:
    import ssl
    from typing import Any

    from opentelemetry.sdk.metrics.export import MetricsData
    from opentelemetry.sdk.trace import ReadableSpan

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = f"otel-cli-telemetry/{__version__}"

OK, RETRY, REJECT, TOO_LARGE = "ok", "retry", "reject", "too_large"


class Outcome:
    """What one export request came to.

    (A plain class: ``dataclasses`` imports ``inspect``, ~15 ms of every drainer start.)
    """

    __slots__ = ("error", "kind", "latency_ms", "rejected", "retry_after_s", "status")

    def __init__(
        self,
        kind: str,  # OK | RETRY (keep data, open breaker) | REJECT (drop data) | TOO_LARGE
        status: int | None = None,
        retry_after_s: float | None = None,
        rejected: int = 0,  # partial success: items the backend refused
        error: str = "",
        latency_ms: float = 0.0,
    ) -> None:
        self.kind = kind
        self.status = status
        self.retry_after_s = retry_after_s
        self.rejected = rejected
        self.error = error
        self.latency_ms = latency_ms

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Outcome({fields})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Outcome) and all(
            getattr(self, name) == getattr(other, name) for name in self.__slots__
        )

    __hash__ = None  # type: ignore[assignment]


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
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


#: RFC 9110 token characters: what a header name may be made of.
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
#: W3C Baggage value characters, plus the space that other SDKs accept unencoded.
_VALUE_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) - frozenset('",;\\')


def parse_headers(value: str) -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_[SIGNAL_]HEADERS``: ``key=value`` pairs separated by commas.

    The format of the OpenTelemetry environment variable specification (W3C Baggage's,
    without properties): names are tokens, lower-cased; values are percent-decoded, and a
    value with a plain space (as other SDKs accept) is taken as written. Malformed pairs are
    skipped. The same result as the Python SDK's ``parse_env_headers(..., liberal=True)``
    (a test compares them), without importing it (it loads ``typing_extensions``).
    """
    headers: dict[str, str] = {}
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        key, val = key.strip(" \t"), val.strip(" \t")
        if not sep or not key or not set(key) <= _TOKEN_CHARS or not set(val) <= _VALUE_CHARS:
            continue
        if " " in val:
            headers[key.lower()] = val
        else:
            headers[_unquote(key).strip().lower()] = _unquote(val).strip()
    return headers


def _unquote(text: str) -> str:
    """Percent-decoded ``text``; ``urllib.parse`` (which imports ``re`` and ``ipaddress``,
    ~7 ms in a drainer) only when there is something to decode."""
    if "%" not in text:
        return text
    from urllib.parse import unquote

    return unquote(text)


def _opener(context: ssl.SSLContext | None) -> Any:
    """A urllib opener that never follows a redirect: the 3xx surfaces as an ``HTTPError``
    (data kept). urllib serves HTTPS and proxies; plain HTTP goes through :mod:`._http`."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), NoRedirect())


#: Variables that route plain HTTP through a proxy (urllib's rules apply to them).
_PROXY_VARS = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


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
        self._proxied = any(env.get(name, "").strip() for name in _PROXY_VARS)
        self._openers: dict[str, Any] = {}

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
        headers = parse_headers(env.get("OTEL_EXPORTER_OTLP_HEADERS", ""))
        headers.update(parse_headers(env.get(f"OTEL_EXPORTER_OTLP_{signal}_HEADERS", "")))
        return headers

    def _ssl_for(self, env: Mapping[str, str], signal: str) -> ssl.SSLContext | None:
        """A context with the custom CA / client cert, or None for the system store."""
        ca = _env(env, signal, "CERTIFICATE")
        self._ssl_ca[signal] = ca
        cert = _env(env, signal, "CLIENT_CERTIFICATE")
        key = _env(env, signal, "CLIENT_KEY")
        if not (ca or cert):
            return None
        import ssl

        context = ssl.create_default_context(cafile=ca or None)
        if cert:
            context.load_cert_chain(cert, key or None)
        return context

    @staticmethod
    def encode_traces(records: Iterable[dict[str, Any]]) -> bytes:
        """The request body for these validated spool records' spans (lean path)."""
        return encode.encode_spans(records)

    @staticmethod
    def encode_metrics(
        records: Iterable[dict[str, Any]],
        start_ns: int,
        end_ns: int,
        temporality: str = encode.DELTA,
        totals: encode.CumulativeTotals | None = None,
    ) -> bytes:
        """The request body for these validated spool records' metric points (lean path)."""
        return encode.encode_metrics(records, start_ns, end_ns, temporality, totals)

    def send_traces(
        self, spans: bytes | Sequence[ReadableSpan], timeout: float | None = None
    ) -> Outcome:
        """Export spans (a body from :meth:`encode_traces`, or SDK spans); partial success is
        read from the response."""
        if isinstance(spans, (bytes, bytearray)):
            body = bytes(spans)
        elif not spans:
            body = b""  # an empty ExportTraceServiceRequest (``doctor``'s probe)
        else:
            from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

            body = encode_spans(spans).SerializeToString()
        return self._export("TRACES", body, timeout)

    def send_metrics(self, data: bytes | MetricsData, timeout: float | None = None) -> Outcome:
        """Export metrics (a body from :meth:`encode_metrics`, or SDK ``MetricsData``);
        partial success is read from the response."""
        if isinstance(data, (bytes, bytearray)):
            body = bytes(data)
        else:
            from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

            body = encode_metrics(data).SerializeToString()
        return self._export("METRICS", body, timeout)

    def _export(self, signal: str, body: bytes, timeout: float | None) -> Outcome:
        """POST one request; an accepted one may still report items it refused.

        The answer's partial success (``rejected_spans`` / ``rejected_data_points`` and
        ``error_message``, the same fields in both responses) is read with
        :func:`.protowire.read_partial_success`, not protobuf: the collector answers every
        success with an empty ``partial_success``, and the classes cost ~25 ms to import.
        """
        outcome, payload = self._post(signal, body, timeout)
        if outcome.kind != OK or not payload:
            return outcome
        from .protowire import read_partial_success

        try:
            rejected, message = read_partial_success(payload)
        except Exception:  # ValueError: accepted; the detail is unreadable
            return outcome
        if not rejected:
            return outcome
        return Outcome(
            OK,
            outcome.status,
            rejected=rejected,
            error=message[:200],
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
            import gzip

            body = gzip.compress(body, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        elif compression == "deflate":
            import zlib

            body = zlib.compress(body)
            headers["Content-Encoding"] = "deflate"
        limit = self.timeouts.get(signal, self.timeout)
        wait = max(0.05, min(timeout if timeout is not None else limit, limit))
        started = time.perf_counter()
        try:
            if url.lower().startswith("http://") and not self._proxied:
                from ._http import post

                status, reply_headers, payload = post(url, body, headers, wait)
            else:
                status, reply_headers, payload = self._post_urllib(signal, url, body, headers, wait)
        except (OSError, ValueError) as exc:  # ssl.SSLError and HTTPException are among them
            latency = (time.perf_counter() - started) * 1000
            return Outcome(
                RETRY, error=f"{type(exc).__name__}: {exc}"[:200], latency_ms=latency
            ), b""
        latency = (time.perf_counter() - started) * 1000
        if not 200 <= status < 300:
            kind = status_kind(status)
            retry_after = (
                parse_retry_after(reply_headers.get("retry-after")) if kind == RETRY else None
            )
            return Outcome(
                kind, status, retry_after, error=f"HTTP {status}", latency_ms=latency
            ), b""
        content_type = reply_headers.get("content-type", "").lower()
        if content_type.startswith(("text/html", "application/xhtml")):
            return Outcome(
                RETRY,
                status,
                error=f"HTTP {status} with an HTML page: not an OTLP endpoint",
                latency_ms=latency,
            ), b""
        return Outcome(OK, status, latency_ms=latency), payload

    def _post_urllib(
        self, signal: str, url: str, body: bytes, headers: dict[str, str], wait: float
    ) -> tuple[int, dict[str, str], bytes]:
        """HTTPS, or anything through a proxy: urllib (redirects are never followed)."""
        import http.client
        import urllib.error
        import urllib.request

        opener = self._openers.get(signal)
        if opener is None:
            opener = self._openers[signal] = _opener(self._ssl[signal])
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with opener.open(request, timeout=wait) as reply:
                payload = reply.read(4 * 1024 * 1024)
                answer = {k.lower(): v for k, v in reply.headers.items()}
                return int(reply.status), answer, payload
        except urllib.error.HTTPError as exc:
            answer = {k.lower(): v for k, v in (exc.headers or {}).items()}
            return int(exc.code), answer, b""
        except http.client.HTTPException as exc:
            raise ValueError(f"{type(exc).__name__}: {exc}") from exc


#: The filter that silences the gRPC exporter's logging in our export threads: the SDK's
#: gRPC exporter logs each transient error and failure; delivering in-process (CI, ``flush``)
#: those would reach the user's terminal through the host's handlers or logging's
#: last-resort handler. Other threads (the host's own exporters) are untouched. Made on first
#: use: ``logging`` is not imported on the HTTP path.
_QUIET: Any = None


def _quiet_threads_filter() -> Any:
    """:data:`_QUIET`, made if needed."""
    global _QUIET
    if _QUIET is None:
        import logging

        class QuietThreads(logging.Filter):
            """Drops log records emitted by threads exporting for us."""

            def __init__(self) -> None:
                super().__init__()
                self.threads: set[int] = set()

            def filter(self, record: logging.LogRecord) -> bool:
                return record.thread not in self.threads

        _QUIET = QuietThreads()
    return _QUIET


_GRPC_LOGGER = "opentelemetry.exporter.otlp.proto.grpc.exporter"


class GrpcTransport:
    """OTLP/gRPC through the SDK's gRPC exporters (no status detail: failures retry)."""

    def __init__(self, base: str | None, environ: Mapping[str, str] | None = None) -> None:
        import logging

        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        quiet = _quiet_threads_filter()
        logger = logging.getLogger(_GRPC_LOGGER)
        if quiet not in logger.filters:
            logger.addFilter(quiet)
        env = dict(os.environ if environ is None else environ)
        self.timeout = request_timeout(env)
        self._spans = OTLPSpanExporter(endpoint=base, timeout=self.timeout)
        self._metrics = OTLPMetricExporter(endpoint=base, timeout=self.timeout)

    configured = True

    @staticmethod
    def encode_traces(records: Iterable[dict[str, Any]]) -> list[ReadableSpan]:
        """SDK spans for these validated records (the SDK's gRPC exporter takes nothing else)."""
        from .convert import to_spans

        return [span for record in records for span in to_spans(record)]

    @staticmethod
    def encode_metrics(
        records: Iterable[dict[str, Any]],
        start_ns: int,
        end_ns: int,
        temporality: str = encode.DELTA,
        totals: encode.CumulativeTotals | None = None,
    ) -> MetricsData:
        """SDK ``MetricsData`` for these validated records' metric points."""
        from .convert import aggregate, metrics_data

        aggregated = aggregate(records)
        if temporality == encode.CUMULATIVE and totals is not None:
            aggregated = totals.fold(aggregated, start_ns)
            start_ns = totals.folded_start_ns
        return metrics_data(aggregated, start_ns, end_ns, temporality)

    def tls_summary(self, signal: str = "TRACES") -> str:
        """How the channel is secured, for ``doctor`` (as the SDK's exporter decides)."""
        return "as configured for the SDK's gRPC exporter (OTEL_EXPORTER_OTLP_INSECURE, ...)"

    @staticmethod
    def _quietly(call: Any, *args: Any, **kwargs: Any) -> Any:
        import threading

        ident = threading.get_ident()
        quiet = _quiet_threads_filter()
        quiet.threads.add(ident)
        try:
            return call(*args, **kwargs)
        finally:
            quiet.threads.discard(ident)

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
