"""A collector of this release still hears an SDK of the previous release.

That SDK sends its built-in attributes and its duration metric under the old ``cli.*``
names. The shipped allowlist carries the SDK's rename map (``renamed_attributes``,
``renamed_metrics``), so the real collector renames them and checks them like the current
names instead of dropping them as undeclared; the rename is counted.
"""

from __future__ import annotations

import requests

from otlp_builders import histogram_metric, metrics_request, span, trace_request

PROTOBUF = {"Content-Type": "application/x-protobuf"}
INSTANCE = "3f0c9a52-0000-4000-8000-00000000c11d"


def _replaced(collector) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """reason -> value of the normalizer's ``replaced`` counter."""
    text = requests.get(f"http://127.0.0.1:{collector.ports['telemetry']}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("otelcol_processor_normalizer_replaced{"):
            labels, value = line.rsplit(" ", 1)
            reason = labels.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = out.get(reason, 0.0) + float(value)
    return out


def test_previous_release_names_are_renamed_not_dropped(file_collector) -> None:  # type: ignore[no-untyped-def]
    collector = file_collector
    resource = {
        "service.name": "deployctl",
        "service.version": "1.4.2",
        "service.instance.id": INSTANCE,
        "cli.installation.id": INSTANCE,  # removed: no successor
        "cli.telemetry.schema_version": "2.d13059d5",
    }
    old_span = span(
        "deployctl stage new",
        {
            "process.exit.code": 0,
            "cli.command": "stage new",
            "cli.flags": ["--force"],
            "cli.interactive": False,
            "cli.ci": True,
            "cli.ci.provider": "github_actions",
            "cli.telemetry.overhead_ms": 1.5,
            "cli.telemetry.dropped": 2,
        },
    )
    traces = trace_request(resource, [old_span])
    response = requests.post(
        collector.http_url + "/v1/traces",
        data=traces.SerializeToString(),
        headers=PROTOBUF,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    metrics = metrics_request(
        resource,
        [
            histogram_metric(
                "cli.command.duration",
                [0.25],
                {"cli.command": "stage new", "process.exit.code": 0},
                description="Duration of CLI commands",
            )
        ],
    )
    response = requests.post(
        collector.http_url + "/v1/metrics",
        data=metrics.SerializeToString(),
        headers=PROTOBUF,
        timeout=10,
    )
    assert response.status_code == 200, response.text

    spans = collector.wait_for_spans(
        lambda spans: any(s["resource"].get("service.instance.id") == INSTANCE for s in spans)
    )
    (got,) = [s for s in spans if s["resource"].get("service.instance.id") == INSTANCE]
    assert got["attributes"] == {
        "process.exit.code": 0,
        "cli_telemetry.command": "stage new",
        "cli_telemetry.flags": ["--force"],
        "process.interactive": False,
        "cli_telemetry.ci.detected": True,
        "cli_telemetry.ci.provider": "github_actions",
        "cli_telemetry.sdk.overhead_ms": 1.5,
        "cli_telemetry.sdk.dropped": 2,
    }
    assert got["resource"]["cli_telemetry.schema.version"] == "2.d13059d5"
    assert not [k for k in got["resource"] if k.startswith("cli.")]

    points = collector.wait_for_metrics(
        lambda points: any(p["resource"].get("service.instance.id") == INSTANCE for p in points)
    )
    (point,) = [p for p in points if p["resource"].get("service.instance.id") == INSTANCE]
    assert point["name"] == "cli_telemetry.command.duration"
    assert point["attributes"] == {"cli_telemetry.command": "stage new", "process.exit.code": 0}

    # 7 span keys + 1 resource key per request (2 resources) + 1 point key + the metric name
    assert _replaced(collector).get("renamed_key", 0) >= 7 + 2 + 1 + 1
    assert collector.alive()
    assert not collector.error_lines(), "the collector logged an error"
