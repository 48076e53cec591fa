#!/usr/bin/env python3
"""Load test of the collector's full scrub pipeline with telemetrygen.

    python benchmarks/collector_load.py [--duration 30] [--workers 4] [--collector-cores 1]

Builds/reuses the distribution (collector/build.sh) and telemetrygen
(collector/install-test-tools.sh), starts the collector on loopback with
config.yaml + allowlist.yaml + overlays/prometheus.yaml (OTLP receiver -> memory_limiter ->
filter/transform scrubbing with the generated allowlist -> span_metrics -> batch ->
Prometheus exporter), pinned to ``--collector-cores`` CPUs (taskset, GOMAXPROCS), and runs
telemetrygen on the other core(s) for a fixed duration. Reports spans/s accepted (from the
collector's own otelcol_receiver_accepted_spans counter), refused spans, and the
collector's peak RSS (VmHWM from /proc). Not a pass/fail test: it prints the numbers (and
--json writes them) for collector/README.md. Traffic stays on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR = ROOT / "collector"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def last_line(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL)
    return out.stdout.strip().splitlines()[-1]


def tools() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(COLLECTOR / "install-test-tools.sh")],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def counter(metrics_url: str, name: str) -> float:
    """Sum of every series of one counter in the collector's own Prometheus metrics."""
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if re.match(rf"^{name}(_total)?({{|\s)", line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds of load")
    parser.add_argument(
        "--generators",
        type=int,
        default=4,
        help="telemetrygen processes (each exports one batch at a time)",
    )
    parser.add_argument("--batch-size", type=int, default=1000, help="spans per OTLP request")
    parser.add_argument("--collector-cores", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()

    binary = last_line(["bash", str(COLLECTOR / "build.sh")])
    telemetrygen = tools()["telemetrygen"]
    ncpu = os.cpu_count() or 1
    collector_cpus = ",".join(str(i) for i in range(min(args.collector_cores, ncpu)))
    load_cpus = ",".join(str(i) for i in range(min(args.collector_cores, ncpu - 1), ncpu))
    taskset = shutil.which("taskset")

    ports = {k: free_port() for k in ("grpc", "http", "health", "telemetry", "prometheus")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTELCOL_")}
    env.update(
        {
            "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}",
            "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}",
            "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
            "OTELCOL_TELEMETRY_PORT": str(ports["telemetry"]),
            "OTELCOL_PROMETHEUS_ENDPOINT": f"127.0.0.1:{ports['prometheus']}",
            "OTELCOL_LOG_LEVEL": "warn",
            "GOMAXPROCS": str(args.collector_cores),
            "GOMEMLIMIT": "320MiB",
        }
    )
    cmd = [binary]
    for config in ("config.yaml", "allowlist.yaml", "overlays/prometheus.yaml"):
        cmd += ["--config", str(COLLECTOR / config)]
    if taskset:
        cmd = [taskset, "-c", collector_cpus, *cmd]
    with tempfile.TemporaryDirectory() as tmp:
        log = open(Path(tmp) / "collector.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{ports['health']}/", timeout=1)
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        print((Path(tmp) / "collector.log").read_text(), file=sys.stderr)
                        return 1
                    time.sleep(0.1)
            metrics_url = f"http://127.0.0.1:{ports['telemetry']}/metrics"
            idle_rss = status_kib(proc.pid, "VmRSS")
            load = [
                telemetrygen,
                "traces",
                "--otlp-endpoint",
                f"127.0.0.1:{ports['grpc']}",
                "--otlp-insecure",
                "--duration",
                f"{args.duration}s",
                "--workers",
                "1",
                "--batch-size",
                str(args.batch_size),
                "--rate",
                "0",
                "--child-spans",
                "2",
                "--service",
                "deployctl",
                "--allow-export-failures",
                "--telemetry-attributes",
                'cli.command="deploy"',
                "--telemetry-attributes",
                "process.exit.code=0",
                "--telemetry-attributes",
                f'error.type="token=ghp_{"a" * 36}"',
                "--telemetry-attributes",
                'user.email="alice@example.com"',
            ]
            if taskset:
                load = [taskset, "-c", load_cpus, *load]
            started = time.monotonic()
            cpu_start = cpu_seconds(proc.pid)
            peak_rss = 0
            gens = [
                subprocess.Popen(
                    load,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                for _ in range(args.generators)
            ]
            while any(gen.poll() is None for gen in gens):
                peak_rss = max(peak_rss, status_kib(proc.pid, "VmRSS"))
                time.sleep(0.2)
                if time.monotonic() - started > args.duration + 60:
                    for gen in gens:
                        if gen.poll() is None:
                            gen.kill()
            elapsed = time.monotonic() - started
            cpu = cpu_seconds(proc.pid) - cpu_start
            time.sleep(2)  # let the batch processor drain
            accepted = counter(metrics_url, "otelcol_receiver_accepted_spans")
            refused = counter(metrics_url, "otelcol_receiver_refused_spans")
            results = {
                "duration_s": round(elapsed, 1),
                "collector_cores": args.collector_cores,
                "telemetrygen_processes": args.generators,
                "spans_per_request": args.batch_size,
                "spans_accepted": int(accepted),
                "spans_refused": int(refused),
                "spans_per_s": round(accepted / elapsed),
                "collector_cpu_percent": round(100 * cpu / elapsed),
                "spans_per_cpu_second": round(accepted / cpu) if cpu else None,
                "idle_rss_mib": round(idle_rss / 1024, 1),
                "peak_rss_mib": round(max(peak_rss, status_kib(proc.pid, "VmHWM")) / 1024, 1),
                "collector_alive": proc.poll() is None,
            }
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.close()
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
