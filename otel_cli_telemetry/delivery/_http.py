"""One HTTP/1.1 POST over a plain socket: the drainer's client for ``http://`` endpoints.

``urllib.request`` imports ``http.client``, the ``email`` package, ``ssl``, ``hashlib``,
``tempfile`` and more: about 150 M instructions, a third of a drainer's start-up, to send
one request to a collector on loopback. This client does only what an OTLP/HTTP export
needs: a POST with a body and ``Connection: close``, and a response read to its declared
length (or to the connection's end), with a bounded size and an overall deadline. HTTPS and
proxies go through urllib (see ``transport``), whose rules for them we do not repeat.

Raises ``OSError`` (refused, reset, timeout, DNS) or ``ValueError`` (a malformed URL or
answer); never follows a redirect (the caller maps each status).
"""

from __future__ import annotations

import socket
import time

#: The most we read of an answer: OTLP answers are a few bytes; a portal's page is bounded.
MAX_ANSWER_BYTES = 4 * 1024 * 1024 + 64 * 1024
#: Headers we write ourselves; a configured header of the same name is ignored.
_OWN_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding"})


def split_url(url: str) -> tuple[str, int, str, str]:
    """(host, port, request target, Host header) of an ``http://`` URL."""
    if not url.lower().startswith("http://"):
        raise ValueError("not an http:// URL")
    rest = url[7:]
    authority, slash, path = rest.partition("/")
    target = slash + path.split("#", 1)[0] if slash else "/"
    if "?" in authority:  # http://host?query
        authority, _, query = authority.partition("?")
        target = "/?" + query
    if "@" in authority:
        raise ValueError("credentials in the URL are not supported")
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise ValueError("bad IPv6 address")
        host, port_text = authority[1:end], authority[end + 1 :].lstrip(":")
    else:
        host, _, port_text = authority.partition(":")
    if not host:
        raise ValueError("no host in the URL")
    port = int(port_text) if port_text else 80
    if not 0 < port < 65536:
        raise ValueError("bad port")
    return host, port, target, authority


def post(
    url: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int, dict[str, str], bytes]:
    """POST ``body``; returns (status, headers with lower-case names, body of the answer)."""
    host, port, target, authority = split_url(url)
    deadline = time.monotonic() + timeout
    lines = [
        f"POST {target} HTTP/1.1",
        f"Host: {authority}",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in _OWN_HEADERS]
    for line in lines:
        if "\r" in line or "\n" in line:
            raise ValueError("line break in a header")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    # An ASCII host goes to getaddrinfo as bytes: a str is run through the "idna" codec,
    # whose import (with re, stringprep and unicodedata) costs a drainer ~18 ms.
    address = host.encode("ascii") if host.isascii() else host
    with socket.create_connection((address, port), timeout=timeout) as sock:  # type: ignore[arg-type]
        sock.sendall(head + body)
        return _read_answer(sock, deadline)


def _read_answer(sock: socket.socket, deadline: float) -> tuple[int, dict[str, str], bytes]:
    data = b""
    parsed: tuple[int, dict[str, str], int] | None = None
    while True:
        if parsed is not None:
            declared = parsed[1].get("content-length")
            if declared is not None and len(data) - parsed[2] >= _length(declared):
                break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out reading the answer")
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_ANSWER_BYTES:
            raise ValueError("answer too large")
        if parsed is None and b"\r\n\r\n" in data:
            parsed = _parse_head(data)
    if parsed is None:
        raise ValueError("connection closed before a complete answer")
    status, headers, start = parsed
    payload = data[start:]
    if "chunked" in headers.get("transfer-encoding", "").lower():
        payload = _dechunk(payload)
    elif "content-length" in headers:
        length = _length(headers["content-length"])
        if len(payload) < length:
            raise ValueError("answer shorter than its Content-Length")
        payload = payload[:length]
    return status, headers, payload


def _length(value: str) -> int:
    length = int(value.strip())
    if length < 0:
        raise ValueError("negative Content-Length")
    return length


def _parse_head(data: bytes) -> tuple[int, dict[str, str], int]:
    """(status, headers, offset of the body); an interim 1xx answer is skipped."""
    offset = 0
    while True:
        end = data.find(b"\r\n\r\n", offset)
        if end < 0:
            raise ValueError("incomplete answer head")
        head = data[offset:end].decode("latin-1").split("\r\n")
        version, _, rest = head[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError("not an HTTP/1.x answer")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for line in head[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            offset = end + 4
            continue
        return status, headers, end + 4


def _dechunk(payload: bytes) -> bytes:
    out = b""
    position = 0
    while True:
        line_end = payload.find(b"\r\n", position)
        if line_end < 0:
            raise ValueError("incomplete chunked answer")
        size = int(payload[position:line_end].split(b";", 1)[0].strip(), 16)
        if size == 0:
            return out
        start = line_end + 2
        if len(payload) < start + size:
            raise ValueError("incomplete chunked answer")
        out += payload[start : start + size]
        position = start + size + 2
