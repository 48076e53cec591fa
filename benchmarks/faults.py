"""Fault scenarios against a fault-injecting OTLP receiver: what was produced, delivered,
counted as dropped, and sent twice.

Each scenario runs real CLI processes (``tests/apps/click_app.py``, small apps written to a
temp dir) and real detached drainers against ``tests/otlp_receiver.OtlpHttpReceiver``, in a
fresh state dir. At the end a *reporter* command (``stage new``) is run against a healthy
receiver: its span carries the drop count still pending, so every drop is read where a
backend would read it (``cli_telemetry.sdk.dropped`` on delivered spans).

Columns:

- *produced*: records the scenario's commands made, plus files put into the spool by the
  fault (poison files count as one record each: the spool has to account for them too);
- *delivered*: distinct command spans the receiver accepted (and did not refuse);
- *dropped (counted)*: the sum of ``cli_telemetry.sdk.dropped`` reported, plus any count still
  pending in the state dir;
- *unaccounted*: produced - delivered - dropped: records lost without a count (0 is right;
  negative: a drop reported twice, see partial success in the README);
- *duplicates*: extra copies the receiver accepted (spans; for the timeout scenario, metric
  requests, and whether the copy was byte-identical).

Run: ``.venv/bin/python benchmarks/faults.py`` (about two minutes); ``--write`` also
updates the ``faults`` section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(ROOT))

from otel_cli_telemetry.handoff import spool  # noqa: E402
from otel_cli_telemetry.paths import Paths  # noqa: E402

from otlp_receiver import OtlpHttpReceiver  # noqa: E402

APP = "clickapp"
CLICK_APP = TESTS / "apps" / "click_app.py"
DRAINER = "otel_cli_telemetry.delivery.drainer"
MAX_RUNTIME = "10"


@dataclass
class Row:
    """One scenario's figures."""

    fault: str
    produced: int
    delivered: int
    dropped: int
    duplicates: str
    note: str = ""

    @property
    def unaccounted(self) -> int:
        return self.produced - self.delivered - self.dropped


class Scenario:
    """A fresh state dir, a receiver, and helpers to run commands and drainers in it."""

    def __init__(self, workdir: Path, app: str = APP) -> None:
        self.app = app
        self.home = workdir / "home"
        self.home.mkdir(parents=True)
        self.rx = OtlpHttpReceiver()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_STATE_HOME": str(workdir / "state"),
            "XDG_CONFIG_HOME": str(workdir / "config"),
            "XDG_CACHE_HOME": str(workdir / "cache"),
            "PYTHONPATH": str(ROOT),
            "LANG": "C.UTF-8",
            f"{app.upper()}_TELEMETRY": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.rx.endpoint,
            "OTEL_CLI_TELEMETRY_DRAINER_MAX_RUNTIME": MAX_RUNTIME,
            "OTEL_CLI_TELEMETRY_DRAINER_LINGER": "0.3",  # drainers leave soon after
        }
        self.root = workdir / "state" / app / "otel-cli-telemetry"
        self.paths = Paths(str(self.root))

    def run(
        self, args: list[Any], script: Path = CLICK_APP, **kw: Any
    ) -> subprocess.CompletedProcess[bytes]:
        env = {**self.env, **kw.pop("env", {})}
        return subprocess.run(
            [sys.executable, str(script), *args],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
            **kw,
        )

    def drainers(self) -> list[int]:
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
                stat = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            state = stat[stat.rindex(")") + 2 :].split()[0]
            if DRAINER.encode() in argv and str(self.root).encode() in argv and state != "Z":
                found.append(int(name))
        return found

    def settle(self, timeout: float = 30) -> None:
        """Wait until no drainer runs for this state dir."""
        deadline = time.monotonic() + timeout
        while self.drainers() and time.monotonic() < deadline:
            time.sleep(0.05)

    def drain(self, *extra: str) -> int:
        done = subprocess.run(
            [sys.executable, "-m", DRAINER, "--app", self.app, "--state-dir", str(self.root),
             *extra],
            env=self.env, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        return done.returncode

    def breaker(self, open_: bool) -> None:
        """Open (as after a failure) or lapse the breaker, keeping the rest of its state."""
        path = self.root / "breaker.json"
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            state = {}
        state["open_until"] = time.time() + (3600 if open_ else -1)
        state.setdefault("failures", 1)
        self.root.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(state))

    def spooled_commands(self, n: int) -> None:
        """``n`` commands whose records stay in the spool (breaker open)."""
        self.breaker(True)
        for _ in range(n):
            self.run(["deploy"])

    def report(self, fault: str, produced: int, note: str = "", name: str = "deploy") -> Row:
        """Run the reporter against a healthy receiver, then read the figures."""
        self.rx.set_mode("ok")
        self.breaker(False)
        self.run(["stage", "new", "x"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.settle()
            if not spool.count(self.paths):
                break
            self.drain()
        spans = [
            s
            for r in self.rx.requests
            if r.signal == "traces" and r.accepted and not r.rejected and r.message is not None
            for s in _decode(r.message)
        ]
        commands = [s for s in spans if s["parent_span_id"] in ("", None)]
        scenario = [s for s in commands if s["attributes"].get("cli_telemetry.command") == name]
        copies = collections.Counter(s["span_id"] for s in scenario)
        dropped = sum(int(s["attributes"].get("cli_telemetry.sdk.dropped", 0)) for s in commands)
        dropped += spool.pending_drops(self.paths)
        return Row(
            fault,
            produced,
            delivered=len(copies),
            dropped=dropped,
            duplicates=str(sum(copies.values()) - len(copies)),
            note=note,
        )

    def close(self) -> None:
        for pid in self.drainers():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.rx.close()


def _decode(message: Any) -> list[dict[str, Any]]:
    from otlp_receiver import decode_spans

    return decode_spans(message)


@contextlib.contextmanager
def scenario(app: str = APP) -> Iterator[Scenario]:
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        current = Scenario(Path(tmp), app)
        try:
            yield current
        finally:
            current.close()


# -- the scenarios ---------------------------------------------------------------------------


def healthy() -> Row:
    with scenario() as s:
        for _ in range(10):
            s.run(["deploy"])
            s.settle()
        return s.report("none (endpoint healthy)", 10)


def outage() -> Row:
    with scenario() as s:
        s.rx.set_mode("status", status=503)
        for _ in range(10):
            s.run(["deploy"])
            s.settle()
        return s.report("503 for 10 commands, then healthy", 10)


def killed() -> Row:
    with scenario() as s:
        s.rx.set_mode("slow", delay=30)
        kills = 5
        for n in range(kills):
            s.run(["deploy"])
            deadline = time.monotonic() + 10
            while len(s.rx.requests) < n + 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            for pid in s.drainers():
                os.kill(pid, signal.SIGKILL)
            s.settle()
        row = s.report(f"drainer SIGKILLed mid-request x{kills}", kills)
        row.note = "a killed request may have been accepted: resent (same span ids)"
        return row


def client_timeout() -> Row:
    with scenario() as s:
        s.rx.set_mode("slow", delay=3, only="metrics")
        s.spooled_commands(3)
        s.breaker(False)
        s.env["OTEL_EXPORTER_OTLP_TIMEOUT"] = "1000"
        s.drain()  # spans accepted; the metrics accepted too, but after the client gave up
        s.run(["deploy"])  # a new record arrives meanwhile
        s.env.pop("OTEL_EXPORTER_OTLP_TIMEOUT")
        row = s.report("metrics answered after the client timeout", 4)
        metrics = [r for r in s.rx.requests if r.signal == "metrics" and r.accepted]
        identical = len(metrics) - len({r.body for r in metrics})
        row.duplicates = (
            f"{row.duplicates} spans; {len(metrics)} metric requests, {identical} identical "
            "to an earlier one"
        )
        row.note = "a backend keying points on (series, start, time) drops the copy"
        return row


def _poison(make: Callable[[Path], None], fault: str, good: int = 12) -> Row:
    with scenario() as s:
        s.spooled_commands(good)
        make(s.root / "spool" / f"{0:020d}-1-poison.json")
        s.breaker(False)
        s.run(["deploy"])
        s.settle()
        return s.report(fault, good + 2, "quarantined, counted as 1 drop")


def nested() -> Row:
    return _poison(lambda p: p.write_bytes(b"[" * 200_000), "deeply nested JSON file in the spool")


def _junk(path: Path) -> None:
    with open(path.with_name(f"{'9' * 20}-1-junk.json"), "wb") as handle:
        handle.truncate(50 * 1024 * 1024)


def oversized() -> Row:
    return _poison(_junk, "50 MB junk file (sorts newest)", good=10)


def fifo() -> Row:
    return _poison(os.mkfifo, "FIFO in the spool")


NOTE_APP = """\
import argparse
import otel_cli_telemetry as telemetry

telemetry.init(app="clickapp", fields={"app.target": "the deploy target"})
parser = argparse.ArgumentParser(prog="deploy")
parser.add_argument("target")
telemetry.set_attributes({"app.target": parser.parse_args().target})
print("ok")
"""


def non_utf8() -> Row:
    with scenario() as s:
        script = s.home / "deploy.py"
        script.write_text(NOTE_APP)
        stderr = 0
        for _ in range(3):
            done = s.run([b"prod\xff"], script=script, env={"GITHUB_ACTIONS": "true"})
            stderr += len(done.stderr)
        row = s.report("non-UTF-8 argument, CI in-process delivery", 3, name=APP)
        row.note = f"{stderr} bytes on stderr"
        return row


FORK_APP = """\
import argparse, os, sys
import otel_cli_telemetry as telemetry

telemetry.init(app="clickapp")
argparse.ArgumentParser(prog="deploy").parse_args()
child = os.fork()
if child:
    os.waitpid(child, 0)
    sys.exit(0)
os.setsid()
sys.exit(0)
"""


def forked() -> Row:
    with scenario() as s:
        script = s.home / "deploy.py"
        script.write_text(FORK_APP)
        for _ in range(3):
            s.run([], script=script)
            s.settle()
        return s.report("the command forks a daemon child", 3, name=APP)


def partial() -> Row:
    with scenario() as s:
        s.spooled_commands(10)
        s.rx.set_mode("partial_success")  # every item refused
        s.breaker(False)
        s.drain()
        return s.report("partial success: every item refused", 10)


def full_disk() -> Row:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    with scenario() as s:
        for _ in range(3):
            s.run(["deploy"], preexec_fn=limit)
        temps = [p.name for p in Path(s.env["XDG_STATE_HOME"]).rglob("*.tmp")]
        row = s.report("full disk (every write fails)", 3)
        row.note = f"{len(temps)} temp file(s) left; nothing can be counted on a full disk"
        return row


def deadline() -> Row:
    with scenario() as s:
        s.spooled_commands(1)
        s.breaker(False)
        s.rx.set_mode("slow", delay=30, only="metrics")
        s.env["OTEL_EXPORTER_OTLP_TIMEOUT"] = "10000"
        s.drain("--max-runtime", "6")
        state = json.loads((s.root / "breaker.json").read_text())
        opened = state.get("open_until", 0) > time.time()
        s.env.pop("OTEL_EXPORTER_OTLP_TIMEOUT")
        row = s.report("drainer's own time limit cuts a request", 1)
        row.note = f"breaker {'OPENED' if opened else 'stayed closed'}"
        return row


WRITER = """\
import random, sys, time
from otel_cli_telemetry.handoff import spool
from otel_cli_telemetry.paths import Paths

paths = Paths(sys.argv[1])
line = open(sys.argv[2], "rb").read()
sys.stdin.read()
for _ in range(10):
    spool.write(paths, line)
    time.sleep(random.uniform(0, 0.02))
"""


def count_cap() -> Row:
    with scenario() as s:
        s.spooled_commands(1)
        (name,) = [n for n in os.listdir(s.root / "spool") if n.endswith(".json")]
        template = s.root / "template.json"
        template.write_bytes((s.root / "spool" / name).read_bytes())
        for n in range(spool.MAX_RECORDS - 1):
            (s.root / "spool" / f"{n + 1:020d}-1-{n:06x}.json").write_bytes(template.read_bytes())
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(s.root), str(template)],
                env=s.env,
                stdin=subprocess.PIPE,
            )
            for _ in range(12)
        ]
        most = 0
        stop = threading.Event()

        def watch() -> None:
            nonlocal most
            from otel_cli_telemetry.delivery.lock import try_lock_fd

            while not stop.is_set():
                fd = try_lock_fd(str(s.root / "spool.lock"))
                if fd is not None:
                    most = max(most, spool.count(s.paths))
                    os.close(fd)
                time.sleep(0.001)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        time.sleep(0.5)
        for writer in writers:
            assert writer.stdin is not None
            writer.stdin.close()
        for writer in writers:
            writer.wait(timeout=120)
        stop.set()
        watcher.join()
        kept = spool.count(s.paths)
        drops = spool.pending_drops(s.paths)
        produced = spool.MAX_RECORDS + 120
        return Row(
            "12 writers x 10 records at the count cap",
            produced,
            delivered=kept,
            dropped=drops,
            duplicates="-",
            note=f"most seen {most} (cap {spool.MAX_RECORDS}); 'delivered' = kept",
        )


SCENARIOS: list[Callable[[], Row]] = [
    healthy,
    outage,
    killed,
    client_timeout,
    nested,
    oversized,
    fifo,
    non_utf8,
    forked,
    partial,
    full_disk,
    deadline,
    count_cap,
]


def table(rows: list[Row]) -> str:
    lines = [
        "| fault | produced | delivered | dropped (counted) | unaccounted | duplicates | note |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.fault} | {r.produced} | {r.delivered} | {r.dropped} | {r.unaccounted} | "
            f"{r.duplicates} | {r.note} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    args = parser.parse_args()
    wanted = {n for n in args.only.split(",") if n}
    rows = []
    started = time.monotonic()
    for run in SCENARIOS:
        if wanted and run.__name__ not in wanted:
            continue
        began = time.monotonic()
        try:
            row = run()
        except Exception as exc:  # one broken scenario must not hide the others
            row = Row(run.__name__, 0, 0, 0, "-", f"scenario failed: {type(exc).__name__}: {exc}")
        print(f"{run.__name__}: {time.monotonic() - began:.1f} s", file=sys.stderr)
        rows.append(row)
    body = table(rows)
    print(body)
    if args.write:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from _bench import update_results

        tree = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
        header = (
            "## Faults (`benchmarks/faults.py`)\n\n"
            f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
            f"{platform.system()} {platform.machine()}, CPython {platform.python_version()}; "
            f"tree {tree}; took {time.monotonic() - started:.0f} s.\n"
            "- Reproduce: `.venv/bin/python benchmarks/faults.py --write`\n\n"
        )
        update_results("faults", header + body + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
