"""A hostile OTLP client against the real collector: nothing sensitive reaches the backend.

The requests are built with the opentelemetry.proto classes and sent raw, over HTTP and
gRPC. What left the collector is read back from the file overlay (the audit trail).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import grpc
import pytest
import requests
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from otlp_builders import (
    counter_metric,
    gauge_metric,
    histogram_metric,
    metrics_request,
    new_span_id,
    new_trace_id,
    span,
    trace_request,
)

pytestmark = pytest.mark.collector

PROTOBUF = {"Content-Type": "application/x-protobuf"}

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFsaWNlIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
URL_PASSWORD = "hunter2-pw"
URL_WITH_PASSWORD = f"https://deploy:{URL_PASSWORD}@git.internal.example.com/acme/app.git"
EMAIL = "alice.smith@example.com"
IP = "10.23.45.67"
IPV6 = "2001:db8:85a3::8a2e:370:7334"
HOSTNAME = "build-07.corp.acme-internal.net"
USER = "alice_w"
UID = 104729
COMMAND_ARG_SECRET = "s3cr3t-cli-arg"
UNKNOWN_VALUE = "UNKNOWN-VALUE-7f3a"
EVENT_SECRET = "EVENT-SECRET-51c2"
LINK_SECRET = "LINK-SECRET-9c1f"
SCOPE_SECRET = "SCOPE-SECRET-2d7e"
STATE_SECRET = "STATESECRET0b4e"
STATUS_SECRET = "STATUS-SECRET-e1e1"

#: Strings that must not appear anywhere in what left the collector.
FORBIDDEN = (
    AWS_KEY,
    GITHUB_TOKEN,
    JWT,
    JWT.split(".")[1],
    URL_PASSWORD,
    EMAIL,
    IP,
    IPV6,
    HOSTNAME,
    USER,
    COMMAND_ARG_SECRET,
    UNKNOWN_VALUE,
    EVENT_SECRET,
    LINK_SECRET,
    SCOPE_SECRET,
    STATE_SECRET,
    STATUS_SECRET,
    "hunter2",
    "alice",
)

#: Keys that must not appear: not in the schema.
FORBIDDEN_KEYS = (
    "host.name",
    "host.ip",
    "process.command_args",
    "process.command_line",
    "process.owner",
    "user.name",
    "user.id",
    "enduser.id",
    "net.peer.ip",
    "user.email",
    "http.url",
    "unknown.key",
    "client.address",
    "exception.message",
    "scope.secret",
)


def hostile_resource(marker: str) -> dict[str, object]:
    return {
        "service.name": "deployctl",
        "service.version": "1.4.2",
        "os.type": "linux",
        "host.arch": "amd64",
        "os.version": f"6.1.0 built on {IP}",  # allowed key, IP inside
        "telemetry.sdk.name": f"otel_cli_telemetry {JWT}",  # allowed key, JWT inside
        "service.instance.id": marker,
        "host.name": HOSTNAME,
        "host.ip": [IP, IPV6],
        "process.command_args": ["deployctl", "deploy", "--password", COMMAND_ARG_SECRET],
        "process.command_line": f"deployctl deploy --password {COMMAND_ARG_SECRET}",
        "process.owner": USER,
        "user.name": USER,
        "user.id": UID,
        "enduser.id": USER,
        "unknown.key": UNKNOWN_VALUE,
    }


def hostile_traces(marker: str):  # type: ignore[no-untyped-def]
    trace_id = new_trace_id()
    root_id = new_span_id()
    command = span(
        f"deployctl deploy --token {GITHUB_TOKEN}",
        {
            "cli_telemetry.command": "deploy",
            "process.exit.code": 1,
            "error.type": f"QuotaError {AWS_KEY}",
            "deploy.change": URL_WITH_PASSWORD,
            "cli_telemetry.agent": f"Bearer {JWT}",
            "workspace.stages": f"mail {EMAIL} from {IP}",
            "cli_telemetry.flags": ["--force", GITHUB_TOKEN],  # list with a secret: dropped
            "cli_telemetry.ci.provider": {"nested": UNKNOWN_VALUE},  # map: dropped
            "workspace.projects": b"\x00" + UNKNOWN_VALUE.encode(),  # bytes: dropped
            "deploy.functions.added": 3,
            "process.interactive": True,
            "cli_telemetry.sdk.overhead_ms": 1.5,
            "net.peer.ip": IP,
            "user.email": EMAIL,
            "http.url": URL_WITH_PASSWORD,
            "unknown.key": UNKNOWN_VALUE,
            "host.name": HOSTNAME,
            "process.command_args": ["deployctl", COMMAND_ARG_SECRET],
        },
        trace_id=trace_id,
        span_id=root_id,
        error=True,
        status_message=f"{STATUS_SECRET} failed for {EMAIL}",
        events=[
            (
                "exception",
                {"exception.message": f"password={EVENT_SECRET}", "exception.type": "QuotaError"},
            )
        ],
        trace_state=f"vendor={STATE_SECRET}",
    )
    phase = span(
        "build",
        {"deploy.change": "added", "host.name": HOSTNAME},
        trace_id=trace_id,
        parent=root_id,
    )
    clean_list = span(
        "deployctl status",
        {
            "cli_telemetry.command": "status",
            "process.exit.code": 0,
            "cli_telemetry.flags": ["--json", "--stage"],
        },
    )
    linked = span(
        "deployctl linked",
        {"cli_telemetry.command": "linked"},
        links=[{"link.secret": LINK_SECRET}],
    )
    return trace_request(
        hostile_resource(marker),
        [command, phase, clean_list, linked],
        scope_name="otel_cli_telemetry",
        scope_version="0.1.0",
        scope_attributes={"scope.secret": SCOPE_SECRET},
    )


def hostile_metrics(marker: str):  # type: ignore[no-untyped-def]
    return metrics_request(
        hostile_resource(marker),
        [
            histogram_metric(
                "cli_telemetry.command.duration",
                [0.2, 0.4],
                {
                    "cli_telemetry.command": "deploy",
                    "process.exit.code": 1,
                    "error.type": f"QuotaError {EMAIL}",
                    "host.name": HOSTNAME,
                },
                description=f"leaks {AWS_KEY}",
                unit="ms",
            ),
            counter_metric(
                "deploy.bytes_uploaded",
                4096,
                {"deploy.change": "added", "user.name": USER},
                unit="By",
            ),
            gauge_metric("deploy.functions.changed", 2.0, {"deploy.change": "added"}),  # wrong type
            gauge_metric("secret.metric", 1.0, {"password": UNKNOWN_VALUE}),  # undeclared
        ],
    )


#: What the SDK (and the normalizer) puts in place of a string that fails its kind.
KIND_PLACEHOLDERS = {
    "identifier": "<redacted>",
    "enum": "<other>",
    "version": "<invalid-version>",
    "duration": "<invalid-duration>",
}


def _allowlist() -> dict:  # type: ignore[type-arg]
    yaml = pytest.importorskip("yaml")
    text = (Path(__file__).resolve().parents[2] / "collector" / "allowlist.yaml").read_text()
    return dict(yaml.safe_load(text)["processors"]["normalizer"])


def _failed(allowlist: dict, section: str, key: str) -> str:  # type: ignore[type-arg]
    return KIND_PLACEHOLDERS[allowlist[section][key]["kind"]]


def _normalizer_counters(collector, name: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """reason -> value of one normalizer counter, from the collector's telemetry endpoint."""
    text = requests.get(f"http://127.0.0.1:{collector.ports['telemetry']}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line.rsplit(" ", 1)
            reason = labels.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = out.get(reason, 0.0) + float(value)
    return out


def _assert_nothing_sensitive(raw: str) -> None:
    for secret in FORBIDDEN:
        assert secret not in raw, f"{secret!r} left the collector"
    for key in FORBIDDEN_KEYS:
        assert f'"{key}"' not in raw, f"key {key!r} left the collector"


def test_hostile_client_over_http_and_grpc(file_collector) -> None:  # type: ignore[no-untyped-def]
    collector = file_collector
    for path, request in (
        ("/v1/traces", hostile_traces("http-marker")),
        ("/v1/metrics", hostile_metrics("http-marker")),
    ):
        response = requests.post(
            collector.http_url + path,
            data=request.SerializeToString(),
            headers=PROTOBUF,
            timeout=10,
        )
        assert response.status_code == 200, response.text
    with grpc.insecure_channel(collector.grpc_target) as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(
            hostile_traces("grpc-marker"), timeout=10
        )
        metrics_service_pb2_grpc.MetricsServiceStub(channel).Export(
            hostile_metrics("grpc-marker"), timeout=10
        )

    def complete(spans: list[dict]) -> bool:  # type: ignore[type-arg]
        markers = {s["resource"].get("service.instance.id") for s in spans if s["name"] == "build"}
        return markers >= {"http-marker", "grpc-marker"}

    spans = collector.wait_for_spans(complete)
    points = collector.wait_for_metrics(
        lambda pts: (
            {
                p["resource"].get("service.instance.id")
                for p in pts
                if p["name"] == "cli_telemetry.command.duration"
            }
            >= {"http-marker", "grpc-marker"}
        )
    )
    _assert_nothing_sensitive(collector.raw_output())

    allowlist = _allowlist()
    for marker in ("http-marker", "grpc-marker"):
        mine = [s for s in spans if s["resource"].get("service.instance.id") == marker]
        by_name = {s["name"]: s for s in mine}
        # A command path component that is not a name ("--token", a token) fails the names
        # grammar: the command span keeps the app, the path becomes <redacted>. The span
        # with links arrives without its links.
        assert set(by_name) == {
            "deployctl <redacted>",
            "build",
            "deployctl status",
            "deployctl linked",
        }
        command = by_name["deployctl <redacted>"]
        assert command["resource"] == {
            "service.name": "deployctl",
            "service.version": "1.4.2",
            "os.type": "linux",
            "host.arch": "amd64",
            # declared keys whose value fails its kind (an IP or a JWT inside): placeholders
            "os.version": _failed(allowlist, "resource_attributes", "os.version"),
            "telemetry.sdk.name": _failed(allowlist, "resource_attributes", "telemetry.sdk.name"),
            "service.instance.id": marker,
        }
        attributes = command["attributes"]
        assert set(attributes) <= set(allowlist["span_attributes"])
        # maps and bytes are gone; a list item failing its kind becomes its placeholder
        assert "cli_telemetry.ci.provider" not in attributes
        assert "workspace.projects" not in attributes
        assert attributes["cli_telemetry.flags"] == ["--force", "<redacted>"]
        assert {k: attributes[k] for k in ("cli_telemetry.command", "process.exit.code",
                                           "process.interactive",
                                           "cli_telemetry.sdk.overhead_ms")} == {
            "cli_telemetry.command": "deploy",
            "process.exit.code": 1,
            "process.interactive": True,
            "cli_telemetry.sdk.overhead_ms": 1.5,
        }  # fmt: skip
        assert attributes["error.type"] == "<redacted>"  # "QuotaError AKIA...": an identifier
        assert attributes["cli_telemetry.agent"] == "<redacted>"  # "Bearer <jwt>"
        for key in ("deploy.change", "workspace.stages"):
            if key in attributes:  # (a kind without placeholder drops the value instead)
                assert attributes[key] == _failed(allowlist, "span_attributes", key)
        assert attributes.get("deploy.functions.added", 3) == 3
        assert command["events"] == []
        assert command["status"].get("message", "") == ""
        assert command["status"].get("code") == 2  # STATUS_CODE_ERROR survives
        assert command["trace_state"] == ""
        assert command["scope"] == {
            "name": "otel_cli_telemetry",
            "version": "0.1.0",
            "attributes": {},
        }
        assert by_name["build"]["attributes"] == {"deploy.change": "added"}
        assert by_name["build"]["parent_span_id"] == command["span_id"]
        assert by_name["deployctl status"]["attributes"]["cli_telemetry.flags"] == [
            "--json",
            "--stage",
        ]
        assert by_name["deployctl linked"]["attributes"] == {"cli_telemetry.command": "linked"}
        assert by_name["deployctl linked"].get("links", []) == []

        # The collector's span-metrics connector derives traces.span.metrics.* from these
        # spans under the same resource, on its own flush schedule: not what was sent.
        mine_points = [
            p for p in points
            if p["resource"].get("service.instance.id") == marker
            and not p["name"].startswith("traces.span.metrics.")
        ]
        assert {p["name"] for p in mine_points} == {
            "cli_telemetry.command.duration",
            "deploy.bytes_uploaded",
        }
        duration = next(p for p in mine_points if p["name"] == "cli_telemetry.command.duration")
        assert duration["attributes"] == {
            "cli_telemetry.command": "deploy",
            "process.exit.code": 1,
            "error.type": "<redacted>",  # "QuotaError <email>" is no identifier
        }
        assert duration["description"] == "duration of each command"
        assert duration["unit"] == "s"
        uploaded = next(p for p in mine_points if p["name"] == "deploy.bytes_uploaded")
        assert uploaded["attributes"] == {"deploy.change": "added"}
        assert uploaded["description"] == "bytes uploaded to the bucket"
    # What was dropped is counted on the collector's own telemetry endpoint, by reason.
    dropped = _normalizer_counters(collector, "otelcol_processor_normalizer_dropped")
    for reason in ("undeclared_attribute", "wrong_type", "span_event", "span_link",
                   "trace_state", "status_message", "scope_attribute", "undeclared_metric",
                   "wrong_metric_type"):  # fmt: skip
        assert dropped.get(reason, 0) >= 2, (reason, dropped)
    replaced = _normalizer_counters(collector, "otelcol_processor_normalizer_replaced")
    assert replaced.get("invalid_value", 0) >= 2
    assert replaced.get("invalid_span_name", 0) >= 2
    assert collector.alive()
    assert collector.healthy()
    assert not collector.error_lines(), "the collector logged an error"


def test_oversized_and_malformed_requests_are_rejected(file_collector) -> None:  # type: ignore[no-untyped-def]
    collector = file_collector
    big_marker = "OVERSIZED-MARKER"
    big = trace_request(
        hostile_resource(big_marker),
        [span("deployctl big", {"cli_telemetry.command": "x" * (5 * 1024 * 1024)})],
    )
    body = big.SerializeToString()
    assert len(body) > 4 * 1024 * 1024
    response = requests.post(
        collector.http_url + "/v1/traces", data=body, headers=PROTOBUF, timeout=30
    )
    assert response.status_code in (400, 413), response.status_code

    # A gzip bomb: 2 MiB on the wire, 256 MiB once inflated.
    bomb_marker = "BOMB-MARKER"
    bomb = trace_request(
        hostile_resource(bomb_marker),
        [span("deployctl bomb", {"cli_telemetry.command": "\0" * (256 * 1024 * 1024)})],
    )
    compressed = gzip.compress(bomb.SerializeToString(), compresslevel=9)
    del bomb
    response = requests.post(
        collector.http_url + "/v1/traces",
        data=compressed,
        headers={**PROTOBUF, "Content-Encoding": "gzip"},
        timeout=60,
    )
    assert response.status_code in (400, 413), response.status_code
    del compressed

    with grpc.insecure_channel(collector.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Export(big, timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    garbage = os.urandom(4096)
    response = requests.post(
        collector.http_url + "/v1/traces", data=garbage, headers=PROTOBUF, timeout=10
    )
    assert response.status_code == 400
    response = requests.post(
        collector.http_url + "/v1/traces",
        data=b"<xml/>",
        headers={"Content-Type": "text/xml"},
        timeout=10,
    )
    assert response.status_code == 415
    response = requests.post(
        collector.http_url + "/v1/logs", data=b"", headers=PROTOBUF, timeout=10
    )
    assert response.status_code in (200, 404, 405)  # no logs pipeline: nothing is stored

    # still up, still healthy, and still serving
    assert collector.alive()
    assert collector.healthy()
    ok = trace_request(
        hostile_resource("after-abuse"), [span("deployctl ok", {"cli_telemetry.command": "ok"})]
    )
    response = requests.post(
        collector.http_url + "/v1/traces", data=ok.SerializeToString(), headers=PROTOBUF, timeout=10
    )
    assert response.status_code == 200
    collector.wait_for_spans(lambda spans: any(s["name"] == "deployctl ok" for s in spans))
    raw = collector.raw_output()
    assert big_marker not in raw
    assert bomb_marker not in raw
    assert collector.peak_rss_kib() < 1024 * 1024, "the bomb was inflated in memory"


TOKEN = "ingest-token-for-tests-6b9d"


def test_auth_refuses_missing_and_wrong_tokens(start_collector) -> None:  # type: ignore[no-untyped-def]
    collector = start_collector("file", "auth", env={"OTELCOL_INGEST_TOKEN": TOKEN})
    body = trace_request(
        hostile_resource("auth"), [span("deployctl auth", {"cli_telemetry.command": "auth"})]
    ).SerializeToString()
    url = collector.http_url + "/v1/traces"
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
    ):
        response = requests.post(url, data=body, headers={**PROTOBUF, **headers}, timeout=10)
        assert response.status_code == 401, (headers, response.status_code)
    with grpc.insecure_channel(collector.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        for metadata in ((), (("authorization", "Bearer wrong-token"),)):
            with pytest.raises(grpc.RpcError) as err:
                stub.Export(
                    trace_request(hostile_resource("grpc-bad"), []), metadata=metadata, timeout=10
                )
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stub.Export(
            trace_request(
                hostile_resource("grpc-ok"),
                [span("deployctl grpc-auth", {"cli_telemetry.command": "auth"})],
            ),
            metadata=(("authorization", f"Bearer {TOKEN}"),),
            timeout=10,
        )
    response = requests.post(
        url, data=body, headers={**PROTOBUF, "Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 200
    spans = collector.wait_for_spans(
        lambda spans: {"deployctl auth", "deployctl grpc-auth"} <= {s["name"] for s in spans}
    )
    assert len(spans) == 2, "a refused request reached the backend"
    assert TOKEN not in collector.raw_output()
    assert collector.alive()
    assert collector.healthy()
