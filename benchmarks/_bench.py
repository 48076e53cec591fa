"""Shared helpers for the benchmarks: clean environments, timed child processes, endpoints.

- :func:`clean_env`: the environment a user's shell would give the CLI (no CI, OTEL_*, app
  switches, or ``PYTHONDONTWRITEBYTECODE``: real installs have cached bytecode).
- :func:`run_timed`: ``posix_spawn`` + ``wait4`` of one child, so its own wall time, CPU time
  and peak RSS are measured (not the harness's, not the detached drainer's).
- :func:`start_endpoint`: the real collector built by ``collector/build.sh`` (config.yaml +
  allowlist.yaml, nop sink), else the test suite's Python OTLP/HTTP receiver.
- :func:`update_results`: each script owns one marked section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
DRAINER_MODULE = "otel_cli_telemetry.delivery.drainer"

#: Variables that make the SDK see CI (each provider's, see capture/environment.py).
CI_VARS = (
    "CI", "CONTINUOUS_INTEGRATION", "GITHUB_ACTIONS", "GITLAB_CI", "TF_BUILD", "CIRCLECI",
    "TRAVIS", "JENKINS_URL", "BUILD_ID", "JENKINS_HOME", "BUILDKITE", "TEAMCITY_VERSION",
    "BITBUCKET_BUILD_NUMBER", "APPVEYOR", "CODEBUILD_BUILD_ID", "BUILDER_OUTPUT", "DRONE",
    "CIRRUS_CI", "SEMAPHORE", "BITRISE_IO", "bamboo_planKey", "bamboo_buildKey",
    "GO_PIPELINE_LABEL", "HARNESS_BUILD_ID",
)
_DROP_PREFIXES = ("OTEL_", "DEPLOYCTL_", "OTELCOL_")
_DROP = (
    "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONPROFILEIMPORTTIME", "PYTHONPATH",
    "DO_NOT_TRACK", "TRACEPARENT", "XDG_STATE_HOME", "AI_AGENT", "AGENT",
)


def clean_env() -> dict[str, str]:
    """os.environ minus everything that would change what the SDK or Python does."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_DROP_PREFIXES) and k not in _DROP and k not in CI_VARS
    }
    from otel_cli_telemetry.capture.environment import detect_ci

    if detect_ci(env) is not None:
        raise SystemExit(f"benchmark env still looks like CI ({detect_ci(env)}): update CI_VARS")
    return env


class Run:
    """One finished child: wall and CPU time (ms), peak RSS (KiB, if measured), exit status,
    output."""

    __slots__ = ("cpu_ms", "exit_code", "rss_kib", "stderr", "stdout", "wall_ms")

    def __init__(self, wall_ms: float, cpu_ms: float, rss_kib: int | None, exit_code: int,
                 stdout: bytes, stderr: bytes) -> None:
        self.wall_ms = wall_ms
        self.cpu_ms = cpu_ms
        self.rss_kib = rss_kib
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr


#: GNU time: forks the measured process from its own tiny address space (see run_timed).
GNU_TIME = "/usr/bin/time"


def run_timed(argv: Sequence[str], env: dict[str, str], scratch: Path,
              rss: bool = False) -> Run:
    """Run ``argv`` to completion; stdout/stderr go to files (no pipe a drainer could hold).

    Wall and CPU time come from this process's ``posix_spawn`` .. ``wait4``. Peak RSS cannot:
    ``wait4``'s ``ru_maxrss`` includes the high-water mark of the address space the child
    was spawned from (this harness's, ~40 MiB). With ``rss=True`` the command runs under GNU
    ``time``, which forks it from a ~2 MiB process and reports its ``ru_maxrss`` (%M); that
    adds a few ms of launcher time, so such runs are kept apart from the timed ones.
    """
    out, err, rss_file = scratch / "stdout", scratch / "stderr", scratch / "rss"
    if rss:
        if not os.path.exists(GNU_TIME):
            rss = False
        else:
            argv = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *argv]
            rss_file.unlink(missing_ok=True)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(out), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        (os.POSIX_SPAWN_OPEN, 2, str(err), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    started = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], list(argv), env, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    wall_ms = (time.perf_counter_ns() - started) / 1e6
    peak = None
    if rss:
        try:
            peak = int(rss_file.read_text().split()[-1])
        except (OSError, ValueError, IndexError):
            peak = None
    return Run(
        wall_ms=wall_ms,
        cpu_ms=(usage.ru_utime + usage.ru_stime) * 1000.0,
        rss_kib=peak,
        exit_code=os.waitstatus_to_exitcode(status),
        stdout=out.read_bytes(),
        stderr=err.read_bytes(),
    )


def drainer_pids(state_dir: str) -> set[int]:
    """Live drainer processes working on ``state_dir`` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        args = raw.split(b"\0")
        if DRAINER_MODULE.encode() in args and state_dir.encode() in args:
            found.add(int(entry))
    return found


def wait_for_drainers(state_dir: str, timeout: float = 30.0) -> bool:
    """Wait until no drainer works on ``state_dir``; False if one is still alive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not drainer_pids(state_dir):
            return True
        time.sleep(0.02)
    return False


def median(values: Iterable[float]) -> float:
    data = sorted(values)
    return float("nan") if not data else (data[(len(data) - 1) // 2] + data[len(data) // 2]) / 2


def p95(values: Iterable[float]) -> float:
    """Nearest-rank 95th percentile."""
    data = sorted(values)
    return float("nan") if not data else data[max(0, math.ceil(0.95 * len(data)) - 1)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _import_tests_module(name: str) -> Any:
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    return __import__(name)


class Endpoint:
    """An OTLP/HTTP endpoint on loopback: ``up`` (collector/receiver), ``refused``, ``silent``."""

    def __init__(self, url: str, description: str, closer: Any = None,
                 spans: Any = None, log: Path | None = None, pid: int | None = None) -> None:
        self.url = url
        self.pid = pid
        self.description = description
        self._closer = closer
        self._spans = spans
        self.log = log

    def accepted_spans(self) -> int | None:
        """Spans the endpoint accepted so far (None if it cannot tell)."""
        return None if self._spans is None else int(self._spans())

    def close(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None


def collector_binary(timeout: float = 900.0) -> Path | None:
    """The collector built by collector/build.sh (cached), or None if it does not build."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTELCOL_")}
    try:
        result = subprocess.run(
            ["bash", str(ROOT / "collector" / "build.sh")], capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL, env=env, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        return None
    return Path(lines[-1])


def _scrape_accepted(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("otelcol_receiver_accepted_spans"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def start_collector(binary: Path, workdir: Path) -> Endpoint:
    """config.yaml + allowlist.yaml (traces and metrics end in the nop sink), free ports."""
    ports = {name: free_port() for name in ("grpc", "http", "health", "telemetry", "prom")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTELCOL_")}
    env.update({
        "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}",
        "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}",
        "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
        "OTELCOL_TELEMETRY_PORT": str(ports["telemetry"]),
        "OTELCOL_PROMETHEUS_ENDPOINT": f"127.0.0.1:{ports['prom']}",
        "OTELCOL_LOG_LEVEL": "warn",
        "GOMEMLIMIT": "320MiB",
    })
    log = workdir / "collector.log"
    cmd = [str(binary), "--config", str(ROOT / "collector" / "config.yaml"),
           "--config", str(ROOT / "collector" / "allowlist.yaml")]
    with log.open("wb") as handle:
        proc = subprocess.Popen(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"collector exited {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['health']}/", timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    else:
        stop()
        raise RuntimeError(f"collector not healthy after 30 s: {log.read_text()[-3000:]}")
    metrics_url = f"http://127.0.0.1:{ports['telemetry']}/metrics"
    return Endpoint(
        f"http://127.0.0.1:{ports['http']}",
        f"real collector ({binary.name}, config.yaml + allowlist.yaml, nop sink)",
        closer=stop, spans=lambda: _scrape_accepted(metrics_url), log=log, pid=proc.pid,
    )


def start_endpoint(kind: str, workdir: Path, prefer: str = "auto") -> Endpoint:
    """``up`` (collector if it builds and ``prefer`` allows, else Python receiver),
    ``refused`` or ``silent``."""
    receiver = _import_tests_module("otlp_receiver")
    if kind == "refused":
        return Endpoint(receiver.refused_endpoint(), "refused (nothing listens on the port)")
    if kind == "silent":
        server = receiver.SilentServer()
        return Endpoint(server.endpoint, "silent (tests/otlp_receiver.SilentServer)",
                        closer=server.close)
    if prefer in ("auto", "collector"):
        binary = collector_binary()
        if binary is not None:
            return start_collector(binary, workdir)
        if prefer == "collector":
            raise SystemExit("collector/build.sh failed and --endpoint collector was asked")
        print("collector/build.sh failed: using the Python OTLP/HTTP receiver", file=sys.stderr)
    rx = receiver.OtlpHttpReceiver()
    return Endpoint(rx.endpoint, "Python OTLP/HTTP receiver (tests/otlp_receiver.py)",
                    closer=rx.close, spans=lambda: len(rx.spans()))


LOAD_AT_START = " ".join(f"{v:.2f}" for v in os.getloadavg())


def machine_info() -> dict[str, str]:
    versions = {}
    for dist in ("opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http",
                 "opentelemetry-instrumentation-click", "protobuf", "wrapt", "click",
                 "platformdirs"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[dist] = importlib.metadata.version(dist)
    load = (f"{LOAD_AT_START} at the start, "
            + " ".join(f"{v:.2f}" for v in os.getloadavg()) + " at the end")
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "otel_cli_telemetry", "examples"],
                               cwd=ROOT, text=True, capture_output=True, check=False).stdout.strip()
        changes = " + uncommitted changes in otel_cli_telemetry/ or examples/"
        tree = f"{head}{changes if dirty else ''}"
    except OSError:
        tree = "unknown"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
                   f"{platform.machine()}, Linux {platform.release()}",
        "load": load,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "hyperfine": shutil.which("hyperfine") or "absent",
        "tree": tree,
    }


def update_results(section: str, body: str) -> None:
    """Replace (or append) the section between ``<!-- section -->`` markers in RESULTS.md."""
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    text = RESULTS.read_text() if RESULTS.exists() else (
        "# Benchmark results\n\nEach section is rewritten by the script named in it; "
        "numbers are from one machine and one run (see each section's header).\n\n"
    )
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else (
        text.rstrip() + "\n\n" + block + "\n"
    )
    RESULTS.write_text(text)
