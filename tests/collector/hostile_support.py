"""Shared pieces of the hostile-client tests: planted markers, the flush sentinel, and the
checks every output must pass (no marker, no field outside the schema, valid UTF-8)."""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import string
import uuid
from typing import Any, Protocol

from otlp_builders import (
    encode,
    histogram_metric,
    metrics_request,
    send,
    span,
    trace_request,
)

#: OTLP/JSON members that the schema never names: none may reach the output.
FOREIGN_MEMBERS = (
    "schemaUrl",
    "entityRefs",
    "exemplars",
    "filteredAttributes",
    "metadata",
    "traceState",
    "kvlistValue",
    "bytesValue",
)

_counter = itertools.count()


def secret_marker() -> tuple[str, str]:
    """(value to plant, unique part that must never leave the collector).

    The value is an AWS access key id behind ``secret=``: a free-text field scrubs it, any
    other kind of field refuses it (``=`` fits no identifier), and a field outside the
    schema drops it.
    """
    unique = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    return f"secret=AKIA{unique}", unique


def plain_marker() -> str:
    """A harmless unique word: may survive only in fields the schema lets through."""
    return f"zqplant{next(_counter):04d}{secrets.token_hex(4)}"


def invalid_utf8() -> tuple[str, bytes, str]:
    """(ASCII placeholder to build the request with, the raw bytes of the same length that
    replace it once encoded, the visible unique part that must never leave).

    The raw bytes open with bytes no UTF-8 text holds (0xff, 0xfe, a truncated 2-byte
    sequence) and end in stray continuation bytes.
    """
    placeholder = f"UTF8PLACEHOLDER{plain_marker()}"
    visible = f"badutf{plain_marker()}"
    raw = (b"\xff\xfe\xc3(" + visible.encode()).ljust(len(placeholder), b"\x80")
    return placeholder, raw, visible


def encodings_of(value: bytes) -> tuple[str, ...]:
    """How bytes can appear in OTLP/JSON output: base64 (bytes values) or hex (ids)."""
    return (base64.b64encode(value).decode(), value.hex(), value.hex().upper())


class Target(Protocol):
    """The parts of conftest.Collector these helpers use."""

    http_url: str
    grpc_target: str

    def wait_for_spans(self, predicate: Any, timeout: float = 20) -> list[dict[str, Any]]: ...

    def wait_for_metrics(self, predicate: Any, timeout: float = 20) -> list[dict[str, Any]]: ...


def sentinel_resource(installation_id: str) -> dict[str, Any]:
    return {
        "service.name": "deployctl",
        "service.version": "1.4.2",
        "os.type": "linux",
        "host.arch": "amd64",
        "service.instance.id": installation_id,
    }


def flush_through(collector: Target, protocol: str) -> None:
    """Send a clean span and histogram and wait until both left the collector.

    The pipelines keep order (one batch processor, one file exporter each), so once the
    sentinel is out, everything sent before it has been exported or dropped: absence
    checks after this are not racy.
    """
    installation_id = str(uuid.uuid4())
    resource = sentinel_resource(installation_id)
    traces = trace_request(
        resource, [span("deployctl status", {"cli_telemetry.command": "status"})]
    )
    metrics = metrics_request(
        resource,
        [
            histogram_metric(
                "cli_telemetry.command.duration", [0.2], {"cli_telemetry.command": "status"}
            )
        ],
    )
    for signal, request in (("traces", traces), ("metrics", metrics)):
        sent = send(
            protocol, collector.http_url, collector.grpc_target, signal, encode(protocol, request)
        )
        assert sent.accepted, f"the clean sentinel was refused: {sent}"
    collector.wait_for_spans(
        lambda spans: any(
            s["resource"].get("service.instance.id") == installation_id for s in spans
        )
    )
    collector.wait_for_metrics(
        lambda points: any(
            p["resource"].get("service.instance.id") == installation_id for p in points
        )
    )


def utf8_errors(raw: bytes) -> list[str]:
    """Output lines that are not valid UTF-8 (each shown with its first bad byte)."""
    bad = []
    for number, line in enumerate(raw.splitlines(), 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as err:
            bad.append(f"line {number}: {err.reason} at byte {err.start}")
    return bad


def foreign_members(raw: str) -> list[str]:
    """Members outside the schema present in the output."""
    return [name for name in FOREIGN_MEMBERS if f'"{name}"' in raw]


def duplicated_keys(records: list[dict[str, Any]]) -> list[str]:
    """Every attribute list in the output that names one key twice."""
    found: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("attributes", "filteredAttributes") and isinstance(value, list):
                    keys = [kv.get("key") for kv in value]
                    dupes = sorted({k for k in keys if keys.count(k) > 1})
                    if dupes:
                        found.append(f"{path}.{key}: {dupes}")
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{path}[{index}]")

    for record in records:
        walk(record, "")
    return found


def leaks(raw: str, forbidden: dict[str, str]) -> list[str]:
    """Names of the planted markers (name -> unique text) present in the output."""
    return [name for name, text in forbidden.items() if text in raw]


def pretty(value: Any) -> str:
    return json.dumps(value, indent=1, default=str)[:4000]
