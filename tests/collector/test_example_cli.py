"""The example CLI end to end through the real collector (config + allowlist + file overlay).

What leaves the collector must hold every field the SDK's schema promises for these commands,
and nothing outside the allowlist generated from that same schema.
"""

from __future__ import annotations

from typing import Any

import pytest

from otel_cli_telemetry.schema import BUILTIN_METRIC_ATTRIBUTES, Schema

from support import ROOT, run_app, wait_for_drainer

pytestmark = pytest.mark.collector

EXAMPLE = ROOT / "examples" / "deploy" / "deployctl.py"
AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLQ"


def _example_schema() -> Schema:
    """FIELDS and METRICS of the example, read without running it (its import calls init())."""
    namespace: dict[str, Any] = {}
    exec(EXAMPLE.read_text().split("telemetry.init(")[0], namespace)
    return Schema("deployctl", namespace["FIELDS"], namespace["METRICS"])


def test_example_through_the_collector(file_collector: Any, cli_env: dict[str, str]) -> None:
    env = {
        **cli_env,
        "DEPLOYCTL_TELEMETRY": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": file_collector.http_url,
    }
    runs = [
        (["deploy", "--stage", "dev", "--aws-access-key-id", AWS_KEY], 0),
        (["deploy", "--stage", "prod", "--fail", "quota"], 1),
        (["stage", "new", "alice@example.com"], 0),
        (["deploy", "--no-such-flag"], 2),
    ]
    for args, code in runs:
        result = run_app(EXAMPLE, args, env)
        assert result.returncode == code, result.stderr
        wait_for_drainer(env, "deployctl")
    spans = file_collector.wait_for_spans(
        lambda spans: sum(s["name"].startswith("deployctl") for s in spans) >= len(runs)
    )
    points = file_collector.wait_for_metrics(
        lambda pts: (
            {"deploy.bytes_uploaded", "cli_telemetry.command.duration"} <= {p["name"] for p in pts}
        )
    )
    schema = _example_schema()

    commands = {
        s["attributes"]["cli_telemetry.command"]: s
        for s in spans
        if s["name"].startswith("deployctl")
    }
    assert set(commands) == {"deploy", "stage new"}
    ok = next(
        s
        for s in spans
        if s["name"] == "deployctl deploy" and s["attributes"]["process.exit.code"] == 0
    )
    for key in (
        "process.executable.name",
        "process.exit.code",
        "process.pid",
        "cli_telemetry.command",
        "cli_telemetry.flags",
        "process.interactive",
        "cli_telemetry.ci.detected",
        "cli_telemetry.sdk.overhead_ms",
        "workspace.projects",
        "workspace.stages",
        "deploy.functions.added",
        "deploy.functions.updated",
        "deploy.functions.removed",
        "deploy.infrastructure_changed",
    ):
        assert key in ok["attributes"], key
    assert sorted(ok["attributes"]["cli_telemetry.flags"]) == ["--aws-access-key-id", "--stage"]
    for key in (
        "service.name",
        "service.version",
        "os.type",
        "host.arch",
        "process.runtime.name",
        "service.instance.id",
        "cli_telemetry.schema.version",
    ):
        assert key in ok["resource"], key
    phases = {s["name"] for s in spans if s["parent_span_id"] == ok["span_id"]}
    assert phases == {"build", "upload", "update"}
    errors = {s["attributes"].get("error.type") for s in spans if s["name"].startswith("deployctl")}
    assert {"QuotaExceededError", "usage_error"} <= errors

    for span in spans:
        assert set(span["attributes"]) <= set(schema.span_attributes), span["name"]
        assert set(span["resource"]) <= set(schema.resource_attributes), span["name"]
    ours = {"cli_telemetry.command.duration", *(m.name for m in schema.metrics)}
    for point in points:
        if point["name"] in ours:
            allowed = set(schema.metric_attributes) | set(BUILTIN_METRIC_ATTRIBUTES)
            assert set(point["attributes"]) <= allowed, point["name"]
    names = {p["name"] for p in points}
    assert {"deploy.bytes_uploaded", "deploy.functions.changed", "deploy.build.duration"} <= names

    raw = file_collector.raw_output()
    assert AWS_KEY not in raw
    assert "alice@example.com" not in raw
    assert cli_env["HOME"] not in raw
