"""The OTLP/HTTP transport against the real receiver: what each answer means for the data.

Status codes, ``Retry-After`` (seconds and HTTP date), OTLP partial success, redirects, HTML
pages from captive portals, headers, gzip, TLS with a custom CA, timeouts against a silent
server, and the endpoint variables.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from email.utils import formatdate
from typing import Any

import pytest

from otel_cli_telemetry.delivery import convert
from otel_cli_telemetry.delivery.transport import (
    OK,
    REJECT,
    RETRY,
    TOO_LARGE,
    HttpTransport,
    parse_retry_after,
    request_timeout,
    signal_url,
)
from test_delivery_support import (
    TlsFiles,
    call_within,
    record_socket_timeouts,
    tls_files,  # noqa: F401  (fixture)
)
from test_spool import record_line

from otlp_receiver import OtlpHttpReceiver, SilentServer, refused_endpoint


def spans(n: int = 1) -> list[Any]:
    return [
        s for i in range(n) for s in convert.to_spans(convert.validate(json.loads(record_line(i))))
    ]


def metrics(n: int = 1) -> Any:
    records = [convert.validate(json.loads(record_line(i))) for i in range(n)]
    return convert.to_metrics(records, 1, 2)


def transport(endpoint: str, **env: str) -> HttpTransport:
    return HttpTransport(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **env})


def test_accepted() -> None:
    with OtlpHttpReceiver() as rx:
        outcome = transport(rx.endpoint).send_traces(spans(2))
        assert (outcome.kind, outcome.status, outcome.rejected) == (OK, 200, 0)
        assert transport(rx.endpoint).send_metrics(metrics()).kind == OK
        assert len(rx.spans()) == 2
        assert rx.points("cli_telemetry.command.duration")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, REJECT),
        (422, REJECT),
        (401, RETRY),
        (403, RETRY),
        (404, RETRY),
        (407, RETRY),
        (408, RETRY),
        (413, TOO_LARGE),
        (429, RETRY),
        (500, RETRY),
        (501, RETRY),
        (503, RETRY),
    ],
)
def test_status_codes(status: int, kind: str) -> None:
    """400-class: the data is bad, drop it; auth/path problems and 5xx: keep it."""
    with OtlpHttpReceiver() as rx:
        rx.set_mode("status", status=status)
        outcome = transport(rx.endpoint).send_traces(spans())
    assert (outcome.kind, outcome.status) == (kind, status)


def test_retry_after_in_seconds() -> None:
    with OtlpHttpReceiver() as rx:
        rx.set_mode("status", status=429, retry_after="42")
        outcome = transport(rx.endpoint).send_traces(spans())
    assert outcome.kind == RETRY
    assert outcome.retry_after_s == 42.0


def test_retry_after_as_http_date() -> None:
    with OtlpHttpReceiver() as rx:
        rx.set_mode("status", status=503, retry_after=formatdate(time.time() + 120, usegmt=True))
        outcome = transport(rx.endpoint).send_traces(spans())
    assert outcome.kind == RETRY
    assert outcome.retry_after_s is not None
    assert 110 <= outcome.retry_after_s <= 121


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0.0), ("-5", 0.0), ("soon", None), ("", None), (None, None), ("1.5", 1.5)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_partial_success_is_reported() -> None:
    with OtlpHttpReceiver() as rx:
        rx.set_mode("partial_success", rejected=1)
        outcome = transport(rx.endpoint).send_traces(spans(3))
        assert (outcome.kind, outcome.rejected) == (OK, 1)
        rx.set_mode("partial_success", rejected=2)
        outcome = transport(rx.endpoint).send_metrics(metrics(2))
        assert (outcome.kind, outcome.rejected) == (OK, 2)


def test_headers_and_gzip_arrive() -> None:
    with OtlpHttpReceiver() as rx:
        env = {
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s3cr%20et,x-tenant=acme",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-signal=traces",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        }
        assert transport(rx.endpoint, **env).send_traces(spans()).kind == OK
        (request,) = rx.requests
    assert request.headers["api-key"] == "s3cr et"
    assert request.headers["x-tenant"] == "acme"
    assert request.headers["x-signal"] == "traces"
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["user-agent"].startswith("otel-cli-telemetry/")
    assert len(rx.spans()) == 1  # the receiver gunzipped and parsed it


def test_refused_is_retry_and_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    waits = record_socket_timeouts(monkeypatch)
    outcome = transport(refused_endpoint()).send_traces(spans())
    assert outcome.kind == RETRY
    assert outcome.status is None
    assert "refused" in outcome.error.lower()
    assert waits == [5.0], "one connection attempt (the default timeout), not retried"


def test_silent_server_is_bounded_by_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server never answers, so only the timeout (500 ms, read as milliseconds) can end
    the request: every wait on the socket is bounded by it."""
    waits = record_socket_timeouts(monkeypatch)
    with SilentServer() as silent:
        sender = transport(silent.endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="500")
        outcome = call_within(60, sender.send_traces, spans())
        assert silent.connections == 1
    assert outcome.kind == RETRY
    assert "timed out" in outcome.error
    assert waits[0] == 0.5
    assert max(waits) <= 0.5, waits


def test_caller_deadline_cuts_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    waits = record_socket_timeouts(monkeypatch)
    with SilentServer() as silent:
        sender = transport(silent.endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="10000")
        outcome = call_within(60, sender.send_traces, spans(), timeout=0.3)
    assert outcome.kind == RETRY
    assert "timed out" in outcome.error
    assert waits[0] == 0.3, "the caller's 0.3 s, not the configured 10 s"
    assert max(waits) <= 0.3, waits


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", 5.0), ("2000", 2.0), ("2", 0.2), ("0", 0.2), ("999000", 10.0), ("x", 5.0)],
)
def test_request_timeout_is_in_milliseconds(raw: str, expected: float) -> None:
    assert request_timeout({"OTEL_EXPORTER_OTLP_TIMEOUT": raw}) == expected


def test_per_signal_timeout_wins() -> None:
    environ = {"OTEL_EXPORTER_OTLP_TIMEOUT": "3000", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "750"}
    assert request_timeout(environ, "TRACES") == 3.0
    assert request_timeout(environ, "METRICS") == 0.75


def test_endpoint_variables() -> None:
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}
    assert signal_url(None, base, "TRACES") == "http://c:4318/v1/traces"
    per_signal = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/custom"}
    assert signal_url(None, {**base, **per_signal}, "TRACES") == "http://t:1/custom"
    assert signal_url(None, {**base, **per_signal}, "METRICS") == "http://c:4318/v1/metrics"
    assert signal_url(None, per_signal, "METRICS") is None
    # config.resolve_endpoint hands the per-signal value on as "the endpoint": not suffixed again
    assert signal_url("http://t:1/custom", per_signal, "TRACES") == "http://t:1/custom"
    # an explicit init(endpoint=...) wins over the variables
    assert signal_url("http://x:9", {**base, **per_signal}, "TRACES") == "http://x:9/v1/traces"


def _answer_with(handler: type[http.server.BaseHTTPRequestHandler]) -> Any:
    """Send one batch of spans to a throwaway loopback server run by ``handler``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        return transport(f"http://127.0.0.1:{server.server_address[1]}").send_traces(spans())
    finally:
        server.shutdown()
        server.server_close()


def test_redirects_are_not_followed() -> None:
    """urllib would turn the POST into a GET; a portal's 200 would read as "accepted"."""

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/login")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    outcome = _answer_with(Redirect)
    assert (outcome.kind, outcome.status) == (RETRY, 302)


def test_an_html_page_is_not_an_acceptance() -> None:
    class Portal(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b"<html>Please log in to the hotel wifi</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    outcome = _answer_with(Portal)
    assert outcome.kind == RETRY
    assert "HTML" in outcome.error


def test_tls_with_a_custom_ca(tls_files: TlsFiles) -> None:  # noqa: F811
    with OtlpHttpReceiver(ssl_context=tls_files.server_context()) as rx:
        assert rx.endpoint.startswith("https://")
        trusted = transport(rx.endpoint, OTEL_EXPORTER_OTLP_CERTIFICATE=str(tls_files.ca))
        assert trusted.send_traces(spans()).kind == OK
        assert trusted.tls_summary() == f"verified against {tls_files.ca}"
        # the system store does not know the test CA: refused, and the data is kept
        untrusted = transport(rx.endpoint)
        outcome = untrusted.send_traces(spans())
        assert outcome.kind == RETRY
        assert "CERTIFICATE_VERIFY_FAILED" in outcome.error
        assert untrusted.tls_summary() == "verified against the system store"
        assert len(rx.spans()) == 1
