#!/usr/bin/env python3
"""Load test of the collector's full pipeline: spans per collector CPU-second.

    python benchmarks/collector_load.py [--load sdk|telemetrygen|both] [--duration 30]

Builds/reuses the distribution (collector/build.sh), starts it on loopback with
config.yaml + allowlist.yaml + overlays/prometheus.yaml (OTLP receiver -> memory_limiter ->
normalizer -> span_metrics -> batch -> Prometheus exporter; traces to the nop sink),
pinned to ``--collector-cores`` CPUs (taskset, GOMAXPROCS), and loads it from the other
core(s) for a fixed duration with one of two loads:

- ``sdk``: what the SDK's drainer sends. The example CLI (examples/deploy) runs a mix of
  commands with telemetry on; its records (command spans with their declared attributes,
  phase spans, histograms and counters) are cloned with fresh ids, their command spans
  padded with more declared attributes up to ``--pad-attributes`` (default 15; the
  recorded ones carry 9-14), validated and encoded by the drainer's own OTLP/HTTP encoder
  (``delivery.encode``), ``--spans-per-request`` spans to a traces request with the
  matching metrics request, and POSTed over OTLP/HTTP protobuf by ``--senders`` processes.
- ``telemetrygen``: telemetrygen traces over gRPC (lighter spans: 4 attributes), the
  figure earlier versions of collector/README.md reported.

CPU-seconds are the collector process's utime + stime from /proc; spans are the
collector's own otelcol_receiver_accepted_spans counter; spans per CPU-second is the
capacity of one core for this pipeline whether or not the loader saturates it. Peak RSS
is VmHWM. Not a pass/fail test: it prints the numbers (and --json writes them) for
collector/README.md. Traffic stays on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR = ROOT / "collector"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


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


def counter(metrics_url: str, name: str, *labels: str) -> float:
    """Sum of the series of one counter in the collector's own Prometheus metrics whose
    labels include every ``labels`` item (``'processor="normalizer"'``)."""
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if re.match(rf"^{name}(_total)?({{|\s)", line) and all(label in line for label in labels):
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


# --- the SDK's load ----------------------------------------------------------------------


#: Declared attributes (built-in or the example app's) that a command span may carry, in the
#: order ``--pad-attributes`` adds the missing ones.
PADDING: tuple[tuple[str, Any], ...] = (
    ("cli_telemetry.flags", ["--stage", "--force"]),
    ("cli_telemetry.ci.provider", "github_actions"),
    ("cli_telemetry.agent", "claude_code"),
    ("cli_telemetry.sdk.dropped", 0),
    ("workspace.projects", 2),
    ("workspace.stages", 3),
    ("deploy.functions.added", 3),
    ("deploy.functions.updated", 4),
    ("deploy.functions.removed", 0),
    ("deploy.infrastructure_changed", True),
    ("deploy.change", "added"),
)


def sdk_requests(
    spans_per_request: int, distinct: int, pad_attributes: int
) -> tuple[list[tuple[bytes, bytes]], dict[str, Any]]:
    """``distinct`` (traces, metrics) request pairs encoded by the drainer's own OTLP/HTTP
    encoder (``delivery.encode``, from validated spool records); each command record padded
    with declared attributes up to ``pad_attributes`` (0: as recorded)."""
    from _bench import clean_env
    from drain_throughput import clone, real_records

    from otel_cli_telemetry.delivery import convert, encode

    templates = real_records(clean_env(), Path(tempfile.mkdtemp(prefix="collector-load-")))
    pairs = []
    attribute_counts = []
    request_spans = []
    now = time.time_ns()
    for _ in range(distinct):
        records: list[dict[str, Any]] = []
        spans = 0
        i = 0
        while spans < spans_per_request:
            raw = clone(templates[i % len(templates)], now, 10_000 + i)
            for key, value in PADDING:
                if len(raw["attributes"]) >= pad_attributes:
                    break
                raw["attributes"].setdefault(key, value)
            record = convert.validate(raw)
            records.append(record)
            attribute_counts.append(len(record["attributes"]))
            spans += 1 + len(record.get("phases", []))
            i += 1
        request_spans.append(spans)
        pairs.append(
            (
                encode.encode_spans(records),
                encode.encode_metrics(records, now - 60 * 10**9, now),
            )
        )
        now += 1
    shape = {
        "spans_per_request": round(sum(request_spans) / len(request_spans)),
        "attributes_per_command_span": round(sum(attribute_counts) / len(attribute_counts), 1),
        "traces_request_bytes": round(sum(len(t) for t, _ in pairs) / len(pairs)),
        "metrics_request_bytes": round(sum(len(m) for _, m in pairs) / len(pairs)),
    }
    return pairs, shape


def _sender(base_url: str, pairs: list[tuple[bytes, bytes]], deadline: float, out: Any) -> None:
    """Send the pairs round-robin until the deadline (one keep-alive connection)."""
    import requests

    session = requests.Session()
    headers = {"Content-Type": "application/x-protobuf"}
    sent = refused = 0
    i = 0
    while time.monotonic() < deadline:
        traces, metrics = pairs[i % len(pairs)]
        i += 1
        for path, body in (("/v1/traces", traces), ("/v1/metrics", metrics)):
            try:
                response = session.post(base_url + path, data=body, headers=headers, timeout=30)
                ok = response.status_code == 200
            except requests.RequestException:
                ok = False
            sent += ok
            refused += not ok
    out.put((sent, refused))


# --- one run ----------------------------------------------------------------------------


def run(args: argparse.Namespace, load: str) -> dict[str, Any]:
    binary = last_line(["bash", str(COLLECTOR / "build.sh")])
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

    shape: dict[str, Any] = {}
    pairs: list[tuple[bytes, bytes]] = []
    if load == "sdk":
        pairs, shape = sdk_requests(
            args.spans_per_request, args.distinct_requests, args.pad_attributes
        )

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
                        raise SystemExit(1) from None
                    time.sleep(0.1)
            metrics_url = f"http://127.0.0.1:{ports['telemetry']}/metrics"
            idle_rss = status_kib(proc.pid, "VmRSS")
            accepted_before = counter(metrics_url, "otelcol_receiver_accepted_spans")
            started = time.monotonic()
            cpu_start = cpu_seconds(proc.pid)
            peak_rss = 0
            if load == "sdk":
                if taskset:
                    os.sched_setaffinity(0, {int(c) for c in load_cpus.split(",")})
                queue: Any = multiprocessing.Queue()
                base = f"http://127.0.0.1:{ports['http']}"
                senders = [
                    multiprocessing.Process(
                        target=_sender,
                        args=(
                            base,
                            pairs[i :: args.senders] or pairs,
                            started + args.duration,
                            queue,
                        ),
                    )
                    for i in range(args.senders)
                ]
                for sender in senders:
                    sender.start()
                alive = lambda: any(s.is_alive() for s in senders)  # noqa: E731
            else:
                gens = [
                    subprocess.Popen(
                        telemetrygen_cmd(args, ports, taskset, load_cpus),
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                    for _ in range(args.generators)
                ]
                alive = lambda: any(g.poll() is None for g in gens)  # noqa: E731
            while alive():
                peak_rss = max(peak_rss, status_kib(proc.pid, "VmRSS"))
                time.sleep(0.2)
                if time.monotonic() - started > args.duration + 60:
                    break
            elapsed = time.monotonic() - started
            time.sleep(2)  # let the batch processor drain
            cpu = cpu_seconds(proc.pid) - cpu_start
            accepted = counter(metrics_url, "otelcol_receiver_accepted_spans") - accepted_before
            normalized = counter(
                metrics_url,
                "otelcol_processor_outgoing_items",
                'processor="normalizer"',
                'otel_signal="traces"',
            )
            refused = counter(metrics_url, "otelcol_receiver_refused_spans")
            if load == "sdk":
                results_from = [queue.get(timeout=30) for _ in senders]
                for sender in senders:
                    sender.join(timeout=10)
                shape["requests_refused_by_http_status"] = sum(r for _, r in results_from)
            results = {
                "load": load,
                **shape,
                "duration_s": round(elapsed, 1),
                "collector_cores": args.collector_cores,
                "spans_accepted": int(accepted),
                "spans_refused": int(refused),
                # what the normalizer passed on to span_metrics and the exporters
                "spans_after_normalizer": int(normalized),
                "spans_per_s": round(accepted / elapsed),
                "collector_cpu_seconds": round(cpu, 1),
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
    return results


def telemetrygen_cmd(
    args: argparse.Namespace, ports: dict[str, int], taskset: str | None, load_cpus: str
) -> list[str]:
    cmd = [
        tools()["telemetrygen"],
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
        'cli_telemetry.command="deploy"',
        "--telemetry-attributes",
        "process.exit.code=0",
        "--telemetry-attributes",
        f'error.type="token=ghp_{"a" * 36}"',
        "--telemetry-attributes",
        'user.email="alice@example.com"',
    ]
    return [taskset, "-c", load_cpus, *cmd] if taskset else cmd


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", choices=("sdk", "telemetrygen", "both"), default="both")
    parser.add_argument("--duration", type=int, default=30, help="seconds of load per run")
    parser.add_argument("--collector-cores", type=int, default=1)
    parser.add_argument("--spans-per-request", type=int, default=300, help="sdk load (100-500)")
    parser.add_argument("--distinct-requests", type=int, default=40, help="sdk load")
    parser.add_argument(
        "--pad-attributes",
        type=int,
        default=15,
        help="sdk load: add declared attributes to each command span up to this many (0: none)",
    )
    parser.add_argument("--senders", type=int, default=3, help="sdk load: sending processes")
    parser.add_argument("--generators", type=int, default=4, help="telemetrygen processes")
    parser.add_argument("--batch-size", type=int, default=1000, help="telemetrygen spans/request")
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument(
        "--no-write", action="store_true", help="do not update benchmarks/RESULTS.md"
    )
    args = parser.parse_args()
    from _bench import machine_info

    affinity = os.sched_getaffinity(0)
    loads = ("sdk", "telemetrygen") if args.load == "both" else (args.load,)
    results = [run(args, load) for load in loads]
    os.sched_setaffinity(0, affinity)  # the sdk load pinned this process to the load cores
    info = machine_info()
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_write:
        write_results(args, results, info)
    return 0


def write_results(
    args: argparse.Namespace, results: list[dict[str, Any]], info: dict[str, str]
) -> None:
    """The collector_load section of benchmarks/RESULTS.md."""
    from _bench import update_results

    lines = [
        "## Collector load (`benchmarks/collector_load.py`)",
        "",
        f"- {'; '.join(f'{k}: {v}' for k, v in info.items())}.",
        f"- Collector pinned to {args.collector_cores} core(s) (taskset, GOMAXPROCS), load on the"
        " others; config.yaml + allowlist.yaml + overlays/prometheus.yaml.",
        f"- Reproduce: `.venv/bin/python benchmarks/collector_load.py --duration {args.duration}`",
        "",
        "| load | spans/request | attributes/command span | spans accepted | after normalizer"
        " | collector CPU s | **spans per CPU-second** | spans/s | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        per_request = r.get("spans_per_request", args.batch_size)
        attributes = r.get("attributes_per_command_span", 4)
        lines.append(
            f"| {r['load']} | {per_request} | {attributes} | {r['spans_accepted']:,} "
            f"| {r['spans_after_normalizer']:,} | {r['collector_cpu_seconds']} "
            f"| **{r['spans_per_cpu_second']:,}** | {r['spans_per_s']:,} | {r['peak_rss_mib']} |"
        )
    update_results("collector_load", "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
