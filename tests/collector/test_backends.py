"""Backends for real: Prometheus (Debian's binary, scraping the prometheus overlay), Jaeger v2
(built from Go modules, via the jaeger overlay), and the OTLP receiver behind TLS."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from conftest import ROOT, Collector, free_port, wait_until
from otlp_builders import span, trace_request
from sdk_senders import Run, send_runs

pytestmark = pytest.mark.collector

GRAFANA = ROOT / "collector" / "grafana"


class Process:
    """A helper server (Prometheus, Jaeger) started by a test and always stopped."""

    def __init__(self, cmd: list[str], log_path: Path, cwd: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def wait_ready(self, url: str, timeout: float = 30) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.proc.args[0]} exited:\n{self.log()}", pytrace=False)
            try:
                return requests.get(url, timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, timeout, what=f"{url} to answer")


@pytest.fixture
def servers() -> Any:
    started: list[Process] = []
    yield started
    for proc in started:
        proc.stop()


# --- Prometheus -------------------------------------------------------------------------


def _prometheus(binary: Path, target: str, tmp: Path, servers: list[Process]) -> str:
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: otelcol-cli-telemetry\n"
        "    honor_labels: true\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    (tmp / "tsdb").mkdir()
    proc = Process(
        [
            str(binary),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        tmp / "prometheus.log",
        cwd=tmp,
    )
    servers.append(proc)
    url = f"http://127.0.0.1:{port}"
    proc.wait_ready(url + "/-/ready")
    return url


def _query(prom: str, expr: str) -> list[dict[str, Any]]:
    response = requests.get(prom + "/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert body.get("status") == "success", (expr, body)
    return list(body["data"]["result"])


def _by_label(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in result}


def _expand(expr: str, variables: dict[str, str]) -> str:
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace("$" + name, variables[name])
    return expr


def test_prometheus_counts_every_command_and_runs_every_dashboard_query(
    start_collector, test_tools, servers, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    collector: Collector = start_collector("prometheus")
    prom = _prometheus(
        test_tools["prometheus"], f"127.0.0.1:{collector.ports['prometheus']}", tmp_path, servers
    )

    def wave(k: int) -> list[Run]:
        runs = [Run("deploy", bytes_uploaded=1000, duration_s=1.5 + k) for _ in range(5)]
        runs += [
            Run(
                "deploy",
                exit_code=1,
                error_type="QuotaExceededError",
                os_type="darwin",
                arch="arm64",
                ci=True,
                version="1.5.0",
            )
            for _ in range(2)
        ]
        runs += [Run("status", phases=(), duration_s=0.05, os_type="windows") for _ in range(4)]
        runs += [
            Run("stage new", exit_code=2, error_type="usage_error", ci=True, phases=())
            for _ in range(1)
        ]
        return runs

    first, second = wave(0), wave(1)
    expected = Counter(r.command for r in first + second)
    calls = (
        "sum by (cli_telemetry_command) (traces_span_metrics_calls_total"
        '{service_name="deployctl", cli_telemetry_command!=""})'
    )

    send_runs(collector.http_url, first)
    wait_until(
        lambda: (
            _by_label(_query(prom, calls), "cli_telemetry_command")
            == {c: n / 2 for c, n in expected.items()}
        ),
        30,
        what="the first wave in Prometheus",
    )
    time.sleep(2.5)  # a few scrapes of the first values, so rate()/increase() see the second
    send_runs(collector.http_url, second)

    def all_counted() -> dict[str, float] | None:
        got = _by_label(_query(prom, calls), "cli_telemetry_command")
        return got if got == dict(expected) else None

    counts = wait_until(all_counted, 30, what="all commands in Prometheus")
    assert counts == {"deploy": 14, "status": 8, "stage new": 2}

    errors = _by_label(
        _query(
            prom,
            "sum by (cli_telemetry_command) (traces_span_metrics_calls_total"
            '{service_name="deployctl", status_code="STATUS_CODE_ERROR"})',
        ),
        "cli_telemetry_command",
    )
    assert errors == {"deploy": 4, "stage new": 2}
    phases = _query(prom, 'sum(traces_span_metrics_calls_total{span_name="build"})')
    assert float(phases[0]["value"][1]) == 14  # one build phase per deploy

    # The SDK's DELTA metrics became cumulative series: one point set per process, summed.
    def all_processes() -> bool:
        result = _query(prom, 'sum(cli_telemetry_command_duration_seconds_count{job="deployctl"})')
        return bool(result) and float(result[0]["value"][1]) == 24

    wait_until(all_processes, 30, what="24 cli_telemetry.command.duration points")
    uploaded = _query(prom, 'sum(deploy_bytes_uploaded_total{job="deployctl"})')
    assert float(uploaded[0]["value"][1]) == 10 * 1000
    per_command = _by_label(
        _query(
            prom,
            "sum by (cli_telemetry_command)"
            ' (cli_telemetry_command_duration_seconds_count{job="deployctl"})',
        ),
        "cli_telemetry_command",
    )
    assert per_command == {"deploy": 14, "status": 8, "stage new": 2}

    # Every query of the dashboard returns data (with the dashboard's variables filled in).
    spec = json.loads((GRAFANA / "queries.json").read_text())
    variables = {**spec["variables"], "app": "deployctl", "__range": "5m"}
    time.sleep(2.5)  # let the scrapes after the second wave land
    for query in spec["queries"]:
        result = _query(prom, _expand(query["expr"], variables))
        finite = [r for r in result if math.isfinite(float(r["value"][1]))]
        assert finite, f"dashboard query {query['id']} returned no data: {query['expr']}"
    assert collector.alive()
    assert not collector.error_lines()


def test_dashboard_and_query_list_agree() -> None:
    dashboard = json.loads((GRAFANA / "cli-usage-dashboard.json").read_text())
    spec = json.loads((GRAFANA / "queries.json").read_text())
    panel_exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert panel_exprs == [q["expr"] for q in spec["queries"]]
    titles = {p["title"] for p in dashboard["panels"]}
    assert titles == {q["title"] for q in spec["queries"]}
    for needed in (
        "traces_span_metrics_calls_total",
        "STATUS_CODE_ERROR",
        "histogram_quantile(0.5",
        "histogram_quantile(0.95",
        "os_type",
        "host_arch",
        "cli_telemetry_ci_detected",
        "service_version",
    ):
        assert any(needed in e for e in panel_exprs), needed


# --- Jaeger v2 --------------------------------------------------------------------------


def test_jaeger_receives_scrubbed_traces(
    start_collector,
    test_tools,
    servers,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    otlp_port, query_port, grpc_port = free_port(), free_port(), free_port()
    config = tmp_path / "jaeger.yaml"
    config.write_text(f"""
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{query_port}
    grpc:
      endpoint: 127.0.0.1:{grpc_port}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
""")
    jaeger = Process(
        [str(test_tools["jaeger"]), "--config", str(config)], tmp_path / "jaeger.log", cwd=tmp_path
    )
    servers.append(jaeger)
    query = f"http://127.0.0.1:{query_port}"
    jaeger.wait_ready(query + "/api/v3/services")

    collector = start_collector(
        "jaeger", env={"OTELCOL_JAEGER_ENDPOINT": f"http://127.0.0.1:{otlp_port}"}
    )
    started = datetime.now(timezone.utc) - timedelta(minutes=1)
    secret = "ghp_" + "Z" * 36
    send_runs(
        collector.http_url,
        [
            Run(
                "deploy",
                phases=("build", "upload"),
                extra={"deploy.change": f"token {secret}", "user.name": "alice"},
            ),
            Run("status", phases=()),
        ],
    )

    def traces() -> list[dict[str, Any]] | None:
        response = requests.get(
            query + "/api/v3/traces",
            params={
                "query.service_name": "deployctl",
                "query.num_traces": 20,
                "query.start_time_min": started.isoformat().replace("+00:00", "Z"),
                "query.start_time_max": (datetime.now(timezone.utc) + timedelta(minutes=1))
                .isoformat()
                .replace("+00:00", "Z"),
            },
            timeout=10,
        )
        if response.status_code != 200:  # 404 until the traces are stored
            return None
        spans = [
            s
            for rs in response.json()["result"]["resourceSpans"]
            for ss in rs["scopeSpans"]
            for s in ss["spans"]
        ]
        return spans if len(spans) >= 4 else None

    spans = wait_until(traces, 30, what="the traces in Jaeger")
    names = sorted(s["name"] for s in spans)
    assert names == ["build", "deployctl deploy", "deployctl status", "upload"]
    raw = json.dumps(spans)
    assert secret not in raw
    assert "alice" not in raw
    assert "user.name" not in raw
    deploy = next(s for s in spans if s["name"] == "deployctl deploy")
    attrs = {a["key"]: a["value"] for a in deploy["attributes"]}
    # "token ghp_..." fails the field's kind: the normalizer sends the kind's placeholder
    yaml = pytest.importorskip("yaml")
    allowlist = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "collector" / "allowlist.yaml").read_text()
    )
    kind = allowlist["processors"]["normalizer"]["span_attributes"]["deploy.change"]["kind"]
    placeholder = {"identifier": "<redacted>", "enum": "<other>"}[kind]
    assert attrs["deploy.change"] == {"stringValue": placeholder}
    children = [s for s in spans if s.get("parentSpanId") == deploy["spanId"]]
    assert sorted(s["name"] for s in children) == ["build", "upload"]
    assert collector.alive()


# --- TLS --------------------------------------------------------------------------------


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed for the TLS test (apt-get install openssl)")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_tls_export_with_ca_works_and_plain_text_is_refused(
    start_collector,
    self_signed,  # type: ignore[no-untyped-def]
    monkeypatch,
) -> None:
    cert, key = self_signed
    # requests lets these override a Session's verify= (the OTLP/HTTP exporter's
    # certificate_file): the exporter would then not trust our CA.
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    collector = start_collector(
        "file", "tls", env={"OTELCOL_TLS_CERT_FILE": str(cert), "OTELCOL_TLS_KEY_FILE": str(key)}
    )
    assert collector.http_url.startswith("https://")

    # OTLP/HTTPS with the CA: accepted
    send_runs(
        collector.http_url,
        [Run("deploy", phases=())],
        span_exporter=OTLPSpanExporter(
            endpoint=collector.http_url + "/v1/traces", certificate_file=str(cert), timeout=10
        ),
        metrics=False,
    )
    # OTLP/gRPC with TLS and the CA: accepted
    grpc_exporter = GrpcSpanExporter(
        endpoint=collector.grpc_target,
        insecure=False,
        timeout=10,
        credentials=grpc.ssl_channel_credentials(root_certificates=cert.read_bytes()),
    )
    send_runs(
        collector.http_url, [Run("status", phases=())], span_exporter=grpc_exporter, metrics=False
    )
    collector.wait_for_spans(
        lambda spans: {s["name"] for s in spans} >= {"deployctl deploy", "deployctl status"}
    )

    body = trace_request(
        {"service.name": "deployctl"}, [span("deployctl plaintext", {"cli_telemetry.command": "x"})]
    ).SerializeToString()
    plain = "http://" + collector.http_url.removeprefix("https://") + "/v1/traces"
    try:
        response = requests.post(
            plain, data=body, timeout=10, headers={"Content-Type": "application/x-protobuf"}
        )
        assert response.status_code == 400, response.status_code  # "HTTP request to HTTPS server"
    except requests.ConnectionError:
        pass
    with pytest.raises(requests.exceptions.SSLError):  # HTTPS without the CA: not trusted
        requests.post(
            collector.http_url + "/v1/traces",
            data=body,
            timeout=10,
            headers={"Content-Type": "application/x-protobuf"},
        )
    with grpc.insecure_channel(collector.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as err:
            trace_service_pb2_grpc.TraceServiceStub(channel).Export(
                trace_request({"service.name": "deployctl"}, []), timeout=5
            )
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    time.sleep(0.5)
    assert "deployctl plaintext" not in collector.raw_output()
    assert collector.alive()
    assert collector.healthy()
