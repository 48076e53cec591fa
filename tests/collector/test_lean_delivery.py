"""The drainer's lean path against the real collector (issue 12): the request bodies written
by ``protowire`` are accepted and read back intact, the collector's success answer (an empty
``partial_success``, two bytes) is read without protobuf, and a whole drain imports neither
``google.protobuf`` nor ``opentelemetry.proto``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from otel_cli_telemetry.delivery import _http, convert, encode, protowire
from otel_cli_telemetry.delivery.transport import OK, HttpTransport
from test_delivery_support import drain_with_importtime, open_breaker, spool_files

from support import ROOT, run_app, state_dir

pytestmark = pytest.mark.collector

EXAMPLE = ROOT / "examples" / "deploy" / "deployctl.py"
APP = "deployctl"


def _spool(env: dict[str, str]) -> list[dict[str, Any]]:
    """Run the example CLI with an open breaker (it spools, starts no drainer); its records."""
    open_breaker(env, APP)
    runs = [
        (["deploy", "--stage", "dev"], 0),
        (["deploy", "--stage", "prod", "--fail", "quota"], 1),
        (["stage", "new", "qa"], 0),
    ]
    for args, code in runs:
        result = run_app(EXAMPLE, args, env)
        assert result.returncode == code, result.stderr
    (state_dir(env, APP) / "breaker.json").unlink()
    folder = state_dir(env, APP) / "spool"
    return [json.loads((folder / name).read_bytes()) for name in spool_files(env, APP)]


def test_a_drain_to_the_collector_imports_no_protobuf(
    file_collector: Any, cli_env: dict[str, str]
) -> None:
    env = {
        **cli_env,
        "DEPLOYCTL_TELEMETRY": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": file_collector.http_url,
    }
    assert len(_spool(env)) == 3
    modules = drain_with_importtime(env, APP)
    assert spool_files(env, APP) == [], "delivered"
    assert "otel_cli_telemetry.delivery.protowire" in modules
    assert sorted(m for m in modules if m.startswith(("google", "opentelemetry"))) == []
    spans = file_collector.wait_for_spans(
        lambda spans: sum(s["name"].startswith("deployctl") for s in spans) >= 3
    )
    commands = sorted(s["name"] for s in spans if s["name"].startswith("deployctl"))
    assert commands == ["deployctl deploy", "deployctl deploy", "deployctl stage new"]
    file_collector.wait_for_metrics(
        lambda pts: {"deploy.bytes_uploaded", "cli_telemetry.command.duration"}
        <= {p["name"] for p in pts}
    )


def test_the_collectors_success_answer_is_read_without_protobuf(
    file_collector: Any, cli_env: dict[str, str]
) -> None:
    """The collector answers ``partial_success {}``: not an empty body, so the transport
    reads it with ``protowire`` (the protobuf classes would cost every drainer ~25 ms)."""
    env = {
        **cli_env,
        "DEPLOYCTL_TELEMETRY": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    }
    records = [convert.validate(r) for r in _spool(env)]
    bodies = {
        "traces": encode.encode_spans(records),
        "metrics": encode.encode_metrics(records, 1, 2),
    }
    for signal, body in bodies.items():
        status, headers, payload = _http.post(
            f"{file_collector.http_url}/v1/{signal}",
            body,
            {"Content-Type": "application/x-protobuf"},
            10,
        )
        assert status == 200, (signal, headers)
        assert payload == b"\n\x00"  # partial_success, present and empty
        assert protowire.read_partial_success(payload) == (0, "")
    transport = HttpTransport(file_collector.http_url, {})
    outcome = transport.send_traces(bodies["traces"])
    assert (outcome.kind, outcome.rejected, outcome.error) == (OK, 0, "")
