"""The drainer's plain-HTTP client (``delivery/_http.py``) against hostile and odd servers.

Raw sockets on loopback answer exactly the bytes each test writes: chunked bodies, interim
1xx answers, a Content-Length longer than the body, garbage, an endless answer, a server
that closes at once; plus the URL forms the standard variables allow, and that a proxy
variable routes the request through urllib (which speaks to the proxy).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from otel_cli_telemetry.delivery import _http
from otel_cli_telemetry.delivery.transport import OK, RETRY, HttpTransport


@contextmanager
def raw_server(answer: bytes, *, endless: bool = False) -> Iterator[tuple[str, list[bytes]]]:
    """A one-connection-at-a-time server that reads a request and writes ``answer``."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)  # accept() wakes up to see ``stop``
    requests: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        data += conn.recv(65536)
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    while len(body) < length:
                        body += conn.recv(65536)
                    requests.append(head + b"\r\n\r\n" + body)
                    conn.sendall(answer)
                    while endless and not stop.is_set():
                        conn.sendall(b"x" * 65536)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1/traces", requests
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=10)


def test_a_plain_answer_and_the_request_we_write() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 2\r\n\r\nab"
    )
    with raw_server(answer) as (url, requests):
        status, headers, body = _http.post(url, b"\x01\x02", {"X-Tenant": "t1"}, 5)
    assert (status, body) == (200, b"ab")
    assert headers["content-type"] == "application/x-protobuf"
    head, _, sent = requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/traces HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 2" in head
    assert b"\r\nX-Tenant: t1" in head
    assert sent == b"\x01\x02"


def test_chunked_answers_and_interim_answers_are_read() -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    with raw_server(answer) as (url, _):
        assert _http.post(url, b"", {}, 5)[2] == b"abcde"


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # then the server closes
        b"garbage\r\n\r\n",
        b"HTTP/1.1 2xx OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"",  # closed without a word
    ],
)
def test_malformed_answers_are_errors_the_data_survives(answer: bytes) -> None:
    with raw_server(answer) as (url, _):
        with pytest.raises((ValueError, OSError)):
            _http.post(url, b"x", {}, 5)
        outcome, _ = HttpTransport(url.rsplit("/v1", 1)[0])._post("TRACES", b"x", 5)
    assert outcome.kind == RETRY


def test_an_endless_answer_is_cut_off() -> None:
    with (
        raw_server(b"HTTP/1.1 200 OK\r\n\r\n", endless=True) as (url, _),
        pytest.raises(ValueError, match="too large"),
    ):
        _http.post(url, b"x", {}, 10)


def test_our_own_headers_cannot_be_overridden_or_split() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    with raw_server(answer) as (url, requests):
        _http.post(url, b"abc", {"Content-Length": "999", "Host": "evil"}, 5)
        with pytest.raises(ValueError):
            _http.post(url, b"abc", {"X-A": "1\r\nX-Injected: 1"}, 5)
    head = requests[0].split(b"\r\n\r\n")[0]
    assert head.count(b"Content-Length") == 1
    assert b"evil" not in head


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://collector:4318/v1/traces", ("collector", 4318, "/v1/traces", "collector:4318")),
        ("http://collector/v1/traces", ("collector", 80, "/v1/traces", "collector")),
        ("http://[::1]:4318/x?a=b#frag", ("::1", 4318, "/x?a=b", "[::1]:4318")),
        ("HTTP://h:1", ("h", 1, "/", "h:1")),
    ],
)
def test_url_forms(url: str, expected: tuple[str, int, str, str]) -> None:
    assert _http.split_url(url) == expected


@pytest.mark.parametrize(
    "url",
    ["http://", "http://h:0/", "http://h:99999/", "http://u:p@h/", "https://h/", "http://[::1/"],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        _http.split_url(url)


def test_a_proxy_variable_sends_through_urllib_to_the_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """urllib knows the proxy rules (no_proxy, CONNECT for https); we do not repeat them."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    with raw_server(answer) as (proxy_url, requests):
        proxy = proxy_url.rsplit("/v1", 1)[0]
        for name in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("http_proxy", proxy)
        transport = HttpTransport("http://collector.invalid:4318")
        outcome = transport.send_traces(b"")
    assert outcome.kind == OK
    # a proxied request names the absolute URL
    assert requests[0].startswith(b"POST http://collector.invalid:4318/v1/traces HTTP/1.1")
