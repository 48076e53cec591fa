"""Fixtures for the collector tests: the built distribution, real processes on loopback.

- ``collector_binary`` (session): runs ``collector/build.sh``; a failed build fails the test.
- ``test_tools`` (session): runs ``collector/install-test-tools.sh`` (Prometheus, Jaeger,
  telemetrygen) and returns their paths.
- ``start_collector`` (factory): starts the collector with ``config.yaml`` + ``allowlist.yaml``
  + the named overlays, every port on a free loopback port (passed through the env vars the
  configs read), waits for the health check, and stops it when the test ends.
- ``file_collector``: a collector with ``overlays/file.yaml``; ``.records()`` returns what left
  it, decoded from the file exporter's JSON lines, and ``.spans()``/``.metrics()`` flatten it.

Usage from another test module in this folder::

    def test_something(file_collector):
        send_to(file_collector.http_url + "/v1/traces")
        spans = file_collector.wait_for_spans(lambda spans: len(spans) >= 1)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR_DIR = ROOT / "collector"
OVERLAYS = COLLECTOR_DIR / "overlays"

#: Environment variables of the developer's shell that would change the collector's config.
_OWN_PREFIX = "OTELCOL_"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last value: {last!r})")


def _run_script(script: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIX)}
    return subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
        check=False,
    )


@pytest.fixture(scope="session")
def collector_binary() -> Path:
    """The distribution built from collector/builder-config.yaml (cached by build.sh)."""
    result = _run_script(COLLECTOR_DIR / "build.sh", timeout=1800)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        pytest.fail(
            f"collector/build.sh failed (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}",
            pytrace=False,
        )
    return Path(lines[-1])


@pytest.fixture(scope="session")
def test_tools() -> dict[str, Path]:
    """prometheus, telemetrygen and jaeger binaries (installed/cached by the script)."""
    result = _run_script(COLLECTOR_DIR / "install-test-tools.sh", timeout=1800)
    tools = {}
    for line in result.stdout.splitlines():
        name, sep, path = line.partition("=")
        if sep and Path(path).is_file():
            tools[name] = Path(path)
    if result.returncode != 0 or set(tools) != {"prometheus", "telemetrygen", "jaeger"}:
        pytest.fail(
            f"collector/install-test-tools.sh failed (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}",
            pytrace=False,
        )
    return tools


def attributes(kvs: list[dict[str, Any]] | None) -> dict[str, Any]:
    """OTLP JSON ``[{"key": k, "value": {"stringValue": v}}]`` -> ``{k: v}``."""
    return {kv["key"]: any_value(kv.get("value", {})) for kv in kvs or []}


def any_value(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [any_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return attributes(value["kvlistValue"].get("values", []))
    if "bytesValue" in value:
        return ("bytes", value["bytesValue"])
    return None


@dataclass
class Collector:
    """One running collector process and the addresses it listens on."""

    binary: Path
    configs: list[Path]
    env: dict[str, str]
    log_path: Path
    ports: dict[str, int]
    file_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def http_url(self) -> str:
        """Base URL of the OTLP/HTTP receiver (add /v1/traces, /v1/metrics)."""
        scheme = "https" if self.env.get("OTELCOL_TLS_CERT_FILE") else "http"
        return f"{scheme}://127.0.0.1:{self.ports['http']}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.ports['grpc']}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['prometheus']}/metrics"

    def start(self, timeout: float = 30) -> None:
        cmd = [str(self.binary)]
        for config in self.configs:
            cmd += ["--config", str(config)]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            cmd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"collector exited with {self.proc.returncode}:\n{self.log()}", pytrace=False
                )
            if self.healthy():
                return
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"collector not healthy after {timeout} s:\n{self.log()}", pytrace=False)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.ports['health']}/", timeout=2
            ) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    def error_lines(self) -> list[str]:
        """Log lines at error level (the console encoding puts the level in column 2)."""
        return [line for line in self.log().splitlines() if "\terror\t" in line]

    def peak_rss_kib(self) -> int:
        """VmHWM of the process (its peak resident set), from /proc."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far, from /proc/<pid>/stat."""
        assert self.proc is not None
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def telemetry_metrics(self) -> str:
        """The collector's own metrics (Prometheus text) from its telemetry endpoint."""
        url = f"http://127.0.0.1:{self.ports['telemetry']}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    # --- what left the collector (file overlay) -----------------------------------------
    def raw_bytes(self) -> bytes:
        """The file exporter's output, undecoded (to check it is valid UTF-8)."""
        assert self.file_path is not None, "start the collector with the file overlay"
        try:
            return self.file_path.read_bytes()
        except FileNotFoundError:
            return b""

    def raw_output(self) -> str:
        assert self.file_path is not None, "start the collector with the file overlay"
        try:
            return self.file_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def records(self) -> list[dict[str, Any]]:
        """Every OTLP JSON request the file exporter wrote, decoded."""
        out = []
        for number, line in enumerate(self.raw_output().splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except RecursionError:
                pytest.fail(f"output line {number} nests too deep to parse: a deep value got out")
        return out

    def spans(self) -> list[dict[str, Any]]:
        """Flattened spans: name, kind, attributes, resource, scope, events, links, status."""
        out = []
        for record in self.records():
            for rs in record.get("resourceSpans", []):
                resource = attributes(rs.get("resource", {}).get("attributes"))
                for ss in rs.get("scopeSpans", []):
                    scope = ss.get("scope", {})
                    for span in ss.get("spans", []):
                        out.append(
                            {
                                "name": span.get("name"),
                                "kind": span.get("kind"),
                                "trace_id": span.get("traceId"),
                                "span_id": span.get("spanId"),
                                "parent_span_id": span.get("parentSpanId", ""),
                                "attributes": attributes(span.get("attributes")),
                                "resource": resource,
                                "scope": {
                                    "name": scope.get("name", ""),
                                    "version": scope.get("version", ""),
                                    "attributes": attributes(scope.get("attributes")),
                                },
                                "events": span.get("events", []),
                                "links": span.get("links", []),
                                "status": span.get("status", {}),
                                "trace_state": span.get("traceState", ""),
                            }
                        )
        return out

    def metrics(self) -> list[dict[str, Any]]:
        """Flattened metric points: name, type, unit, description, attributes, resource, point."""
        out = []
        for record in self.records():
            for rm in record.get("resourceMetrics", []):
                resource = attributes(rm.get("resource", {}).get("attributes"))
                for sm in rm.get("scopeMetrics", []):
                    for metric in sm.get("metrics", []):
                        for kind in (
                            "sum",
                            "gauge",
                            "histogram",
                            "exponentialHistogram",
                            "summary",
                        ):
                            if kind in metric:
                                for point in metric[kind].get("dataPoints", []):
                                    out.append(
                                        {
                                            "name": metric.get("name"),
                                            "type": kind,
                                            "unit": metric.get("unit", ""),
                                            "description": metric.get("description", ""),
                                            "temporality": metric[kind].get(
                                                "aggregationTemporality"
                                            ),
                                            "attributes": attributes(point.get("attributes")),
                                            "resource": resource,
                                            "point": point,
                                        }
                                    )
        return out

    def wait_for_spans(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 20
    ) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]] | None:
            spans = self.spans()
            return spans if predicate(spans) else None

        return wait_until(check, timeout, what="spans in the file exporter output")

    def wait_for_metrics(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 20
    ) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]] | None:
            points = self.metrics()
            return points if predicate(points) else None

        return wait_until(check, timeout, what="metrics in the file exporter output")


StartCollector = Callable[..., Collector]


@pytest.fixture
def start_collector(
    collector_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartCollector]:
    """Factory: ``start_collector("file", "prometheus", env={...}, allowlist=path)``.

    Overlays are names in collector/overlays/ or paths. Every listener gets a free loopback
    port; ``env`` adds or overrides variables (e.g. OTELCOL_INGEST_TOKEN). All collectors
    started by a test are stopped when it ends.
    """
    started: list[Collector] = []

    def start(
        *overlays: str | Path,
        env: dict[str, str] | None = None,
        allowlist: Path | None = None,
        timeout: float = 30,
    ) -> Collector:
        tmp = tmp_path_factory.mktemp("collector")
        ports = {
            name: free_port() for name in ("grpc", "http", "health", "telemetry", "prometheus")
        }
        file_path = tmp / "audit.jsonl"
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIX)}
        base_env.update(
            {
                "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}",
                "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}",
                "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
                "OTELCOL_TELEMETRY_PORT": str(ports["telemetry"]),
                "OTELCOL_PROMETHEUS_ENDPOINT": f"127.0.0.1:{ports['prometheus']}",
                "OTELCOL_FILE_PATH": str(file_path),
                "OTELCOL_FILE_FLUSH_INTERVAL": "100ms",
                "OTELCOL_SPANMETRICS_FLUSH_INTERVAL": "1s",
                "OTELCOL_MEMORY_LIMIT_MIB": "400",
                "OTELCOL_MEMORY_SPIKE_LIMIT_MIB": "80",
                "GOMEMLIMIT": "320MiB",
            }
        )
        base_env.update(env or {})
        configs = [COLLECTOR_DIR / "config.yaml", allowlist or COLLECTOR_DIR / "allowlist.yaml"]
        for overlay in overlays:
            path = Path(overlay)
            configs.append(path if path.suffix else OVERLAYS / f"{overlay}.yaml")
        collector = Collector(
            binary=collector_binary,
            configs=configs,
            env=base_env,
            log_path=tmp / "collector.log",
            ports=ports,
            file_path=file_path if any(Path(c).name == "file.yaml" for c in configs) else None,
        )
        started.append(collector)
        collector.start(timeout=timeout)
        return collector

    yield start
    for collector in started:
        collector.stop()


@pytest.fixture
def file_collector(start_collector: StartCollector) -> Collector:
    """config.yaml + allowlist.yaml + overlays/file.yaml, on free loopback ports."""
    return start_collector("file")
