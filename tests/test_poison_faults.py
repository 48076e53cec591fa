"""Poison inputs and exact accounting (issue 13), each as a real-process fault.

Every test puts a real process (a CLI run, a detached drainer, concurrent writers, a forked
child) in front of the fault and checks what reached the real receiver, what is left in
the spool, and what was counted as dropped:

1. deeply nested JSON in the spool, and a full spool whose oldest file is that poison;
2. an oversized junk file among good records;
3. a non-UTF-8 argument (CI in-process delivery and the background drainer);
4. a FIFO in the spool, and a drainer that hangs past its time limit;
5. a forked / daemonized child leaving the command (click) or the interpreter (argparse);
6. OTLP partial success, counted in records, passing on the drop counts it carried;
7. a full disk (no temp file left behind);
8. the drainer's own deadline cutting a request short (not an endpoint failure);
9. a retry after a client timeout is the same request (same records, same window);
10. concurrent writers at the count cap.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from otel_cli_telemetry.delivery.lock import try_lock_fd
from otel_cli_telemetry.handoff import spool
from otel_cli_telemetry.paths import Paths
from otel_cli_telemetry.schema import RECORD_VERSION
from test_delivery_support import (
    app_env,
    breaker,
    command_spans,
    delivery_log,
    drainer_pids,
    kill_drainers,
    open_breaker,
    spool_files,
    start_drainer,
    wait_until,
)

from otlp_receiver import OtlpHttpReceiver, refused_endpoint
from support import run_app, state_dir, wait_for_drainer

APP = "clickapp"


def record(n: int, *, dropped: int = 0, phases: int = 0, app: str = "poison") -> dict[str, Any]:
    """A valid spool record (as the hand-off writes it): span id ``n + 1``."""
    start = 1_700_000_000_000_000_000 + n * 1_000_000
    attributes: dict[str, Any] = {"cli_telemetry.command": "deploy", "process.exit.code": 0}
    if dropped:
        attributes["cli_telemetry.sdk.dropped"] = dropped
    return {
        "v": RECORD_VERSION,
        "app": app,
        "trace_id": f"{n + 1:032x}",
        "span_id": f"{n + 1:016x}",
        "parent_span_id": None,
        "name": f"{app} deploy",
        "start_ns": start,
        "end_ns": start + 500_000,
        "status": "UNSET",
        "attributes": attributes,
        "resource": {"service.name": app},
        "phases": [
            {
                "name": f"step{k}",
                "span_id": f"{(n + 1) * 100 + k + 1:016x}",
                "parent_span_id": f"{n + 1:016x}",
                "start_ns": start + k,
                "end_ns": start + k + 10,
                "status": "UNSET",
                "attributes": {},
            }
            for k in range(phases)
        ],
        "metrics": [
            {
                "name": "app.items",
                "kind": "counter",
                "unit": "{item}",
                "description": "",
                "points": [{"value": 1, "attributes": {}}],
            }
        ],
    }


def spool_records(root: Path, count: int, first: int = 0, **kw: Any) -> list[str]:
    """Write ``count`` record files straight into the spool (names in capture order);
    returns their span ids."""
    folder = root / "spool"
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for n in range(first, first + count):
        data = record(n, **kw)
        name = f"{1_000_000 + n:020d}-1-{n:06x}.json"
        (folder / name).write_text(json.dumps(data))
        ids.append(data["span_id"])
    return ids


def delivered_ids(rx: OtlpHttpReceiver, app: str = "poison") -> list[str]:
    return sorted(str(s["span_id"]) for s in command_spans(rx.spans(), app))


def drain_once(env: dict[str, str], *extra: str, timeout: float = 60) -> int:
    """Run one detached drainer to its end; its exit status."""
    process = start_drainer(env, APP, *extra)
    try:
        return process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()


# -- 1. deeply nested JSON ------------------------------------------------------------------


def test_deeply_nested_json_is_quarantined_and_everything_else_delivered(
    cli_env: dict[str, str],
) -> None:
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint)
        root = state_dir(env, APP)
        ids = spool_records(root, 12)
        poison = root / "spool" / f"{0:020d}-1-deep00.json"  # sorts first
        poison.write_bytes(b"[" * 200_000)
        assert drain_once(env) == 0, "the drainer must not crash on it"
        assert delivered_ids(rx) == sorted(ids)
    assert spool_files(env, APP) == []
    assert (Path(spool.quarantine_dir(Paths(str(root)))) / poison.name).exists()
    assert spool.pending_drops(Paths(str(root))) == 1, "the poison file counted once"
    assert breaker(env, APP).get("failures", 0) == 0


def test_a_full_spool_whose_oldest_file_is_poison_still_takes_and_counts(
    cli_env: dict[str, str],
) -> None:
    """At the count cap the writer evicts the oldest file: the poison one. It must be
    counted, and the new record spooled (it is in the local history, after all)."""
    env = app_env(cli_env, APP, refused_endpoint())
    open_breaker(env, APP)
    root = state_dir(env, APP)
    paths = Paths(str(root))
    spool_records(root, spool.MAX_RECORDS - 1, first=1)
    (root / "spool" / f"{0:020d}-1-deep00.json").write_bytes(b'{"a":' * 50_000)
    assert spool.count(paths) == spool.MAX_RECORDS
    result = run_app("click_app.py", ["deploy"], env)
    assert result.returncode == 0
    assert result.stderr == b"warning: ok\n"
    assert spool.pending_drops(paths) == 1, "the evicted poison file is counted"
    history = (root / "records.jsonl").read_text().splitlines()
    assert len(history) == 1
    span_id = json.loads(history[0])["span_id"]
    spooled = [json.loads((root / "spool" / name).read_text()) for name in spool_files(env, APP)]
    assert span_id in {r["span_id"] for r in spooled}, "the new record is in the spool"
    assert len(spooled) == spool.MAX_RECORDS


# -- 2. an oversized junk file ----------------------------------------------------------------


def test_an_oversized_junk_file_evicts_no_good_record(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint)
        root = state_dir(env, APP)
        ids = spool_records(root, 10)
        junk = root / "spool" / f"{99_999_999_999:020d}-1-junk00.json"  # sorts newest
        with open(junk, "wb") as handle:
            handle.truncate(50 * 1024 * 1024)  # sparse: 50 MB by size, no disk used
        assert drain_once(env) == 0
        assert delivered_ids(rx) == sorted(ids), "all 10 good records delivered"
    assert spool_files(env, APP) == []
    assert not junk.exists()
    assert spool.pending_drops(Paths(str(root))) == 1


# -- 3. a non-UTF-8 argument -------------------------------------------------------------------

NOTE_APP = """\
import argparse
import otel_cli_telemetry as telemetry

telemetry.init(app="noteapp", fields={"app.target": telemetry.Text("the deploy target")})
parser = argparse.ArgumentParser(prog="noteapp")
parser.add_argument("target")
args = parser.parse_args()
telemetry.set_attributes({"app.target": args.target})
with telemetry.phase("work"):
    telemetry.counter("app.deploys").add(1, {"app.target": args.target})
print("ok")
"""


@pytest.mark.parametrize("ci", [True, False], ids=["ci-in-process", "background-drainer"])
def test_a_non_utf8_argument_is_repaired_once_and_counted(
    cli_env: dict[str, str], tmp_path: Path, ci: bool
) -> None:
    script = tmp_path / "noteapp.py"
    script.write_text(NOTE_APP)
    with OtlpHttpReceiver() as rx:
        extra = {"GITHUB_ACTIONS": "true"} if ci else {}
        env = app_env(cli_env, "noteapp", rx.endpoint, **extra)
        result = subprocess.run(
            [sys.executable, str(script), b"prod\xff\xfe"],  # type: ignore[list-item]
            env=env,
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert (result.returncode, result.stdout, result.stderr) == (0, b"ok\n", b"")
        (span,) = command_spans(rx.wait_for_spans(2, timeout=20), "noteapp")
        rx.wait_for_metrics(lambda ms: any(m["name"] == "app.deploys" for m in ms), timeout=20)
        wait_for_drainer(env, "noteapp")
        points = rx.points("app.deploys")
    assert span["attributes"]["app.target"] == "prod\ufffd\ufffd"
    assert span["attributes"]["cli_telemetry.sdk.invalid_utf8"] == 2  # the span's, the point's
    assert points[0]["attributes"] == {"app.target": "prod\ufffd\ufffd"}


# -- 4. a FIFO, and a drainer that hangs ------------------------------------------------------


def test_a_fifo_in_the_spool_never_blocks_the_drainer(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as rx:
        env = app_env(
            cli_env, APP, rx.endpoint, OTEL_CLI_TELEMETRY_DRAINER_MAX_RUNTIME="10"
        )
        root = state_dir(env, APP)
        ids = spool_records(root, 12)
        fifo = root / "spool" / f"{0:020d}-1-fifo00.json"
        os.mkfifo(fifo)
        try:
            assert run_app("click_app.py", ["deploy"], env).returncode == 0
            rx.wait_for_spans(12 + 2, timeout=8)  # the 12, and the command with its phase
            assert wait_until(lambda: not drainer_pids(root), timeout=8)
        finally:
            kill_drainers(root)
        assert delivered_ids(rx) == sorted(ids)
    assert spool_files(env, APP) == []
    assert not fifo.exists()
    assert spool.pending_drops(Paths(str(root))) == 1
    assert breaker(env, APP).get("failures", 0) == 0


HANGING_DRAINER = """\
import sys, time
from otel_cli_telemetry.delivery import drainer

# A hang that no request timeout bounds (a DNS lookup, a stuck file system).
drainer.drain = lambda *args, **kwargs: time.sleep(60)
sys.exit(drainer.main(["--app", "clickapp", "--state-dir", sys.argv[1], "--max-runtime", "1"]))
"""


def test_a_drainer_ended_by_its_watchdog_opens_the_breaker(cli_env: dict[str, str]) -> None:
    env = app_env(cli_env, APP, refused_endpoint())
    root = state_dir(env, APP)
    root.mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-c", HANGING_DRAINER, str(root)], env=env, timeout=30, check=False
    )
    assert done.returncode == 3
    state = breaker(env, APP)
    assert state.get("failures") == 1, "the next command must not start another hanging one"
    assert "limit" in str(state.get("last_error"))
    assert run_app("click_app.py", ["deploy"], env).returncode == 0
    assert drainer_pids(root) == []
    assert any(e.get("outcome") == "watchdog" for e in delivery_log(env, APP))


# -- 5. forked children --------------------------------------------------------------------

FORK_CLICK = """\
import os
import otel_cli_telemetry as telemetry

telemetry.init(app="forkapp")
import click


@click.command()
def main():
    telemetry.counter("app.runs").add(1)
    child = os.fork()
    if child == 0:
        telemetry.counter("app.runs").add(100)  # the child's work is not the command's
        return  # the child leaves the command the way the parent does
    os.waitpid(child, 0)


main()
"""

FORK_ARGPARSE = """\
import argparse, os, sys
import otel_cli_telemetry as telemetry

telemetry.init(app="forkapp")
argparse.ArgumentParser(prog="forkapp").parse_args()
child = os.fork()
if child:
    os.waitpid(child, 0)
    sys.exit(0)
os.setsid()  # a daemon: it goes on, then exits through the interpreter's exit hooks
sys.exit(0)
"""


@pytest.mark.parametrize("source", [FORK_CLICK, FORK_ARGPARSE], ids=["click", "argparse-daemon"])
def test_a_forked_child_sends_no_second_record(
    cli_env: dict[str, str], tmp_path: Path, source: str
) -> None:
    script = tmp_path / "forkapp.py"
    script.write_text(source)
    env = app_env(cli_env, "forkapp", refused_endpoint())
    open_breaker(env, "forkapp")
    result = run_app(script, [], env)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    root = state_dir(env, "forkapp")
    history = [json.loads(line) for line in (root / "records.jsonl").read_text().splitlines()]
    assert len(history) == 1, [r["span_id"] for r in history]
    assert len(spool_files(env, "forkapp")) == 1
    if source is FORK_CLICK:
        (metric,) = history[0]["metrics"]
        assert [p["value"] for p in metric["points"]] == [1]


# -- 6. partial success, in records ----------------------------------------------------------


def test_partial_success_is_counted_in_records_and_passes_carried_drops_on(
    cli_env: dict[str, str],
) -> None:
    """Three records of three spans each, each reporting 5 earlier drops; the backend
    refuses every span and point: 3 records lost, and the 15 drops they reported too."""
    with OtlpHttpReceiver() as rx:
        rx.set_mode("partial_success")  # rejected = every item of the request
        env = app_env(cli_env, APP, rx.endpoint)
        root = state_dir(env, APP)
        spool_records(root, 3, dropped=5, phases=2)
        assert drain_once(env) == 0
        traces = [r for r in rx.requests if r.signal == "traces"]
    assert traces[0].rejected == 9, "the receiver refused nine spans"
    assert spool_files(env, APP) == []
    assert spool.pending_drops(Paths(str(root))) == 3 + 3 * 5


# -- 7. a full disk -------------------------------------------------------------------------


def _no_file_growth() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # every write fails: EFBIG


def test_a_full_disk_leaves_no_temp_file(cli_env: dict[str, str]) -> None:
    env = app_env(cli_env, APP, refused_endpoint())
    for _ in range(3):
        result = subprocess.run(
            [sys.executable, str(Path(__file__).parent / "apps" / "click_app.py"), "deploy"],
            env=env,
            capture_output=True,
            timeout=30,
            preexec_fn=_no_file_growth,
            check=False,
        )
        assert (result.returncode, result.stdout) == (0, b"doing ok\n")
    state = Path(env["XDG_STATE_HOME"])
    leftovers = [str(p) for p in state.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


# -- 8. the drainer's own deadline ------------------------------------------------------------


def test_the_drainers_deadline_is_not_an_endpoint_failure(cli_env: dict[str, str]) -> None:
    """Spans accepted at once, the metrics request still unanswered when the run's time is
    up: the endpoint is healthy, so no breaker; the metrics wait for the next run."""
    with OtlpHttpReceiver() as rx:
        rx.set_mode("slow", delay=30, only="metrics")
        env = app_env(cli_env, APP, rx.endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="10000")
        root = state_dir(env, APP)
        ids = spool_records(root, 1)
        assert drain_once(env, "--max-runtime", "6") == 0
        assert delivered_ids(rx) == ids
    assert breaker(env, APP).get("failures", 0) == 0
    assert [n.endswith(".t.json") for n in spool_files(env, APP)] == [True]
    assert any(e.get("outcome") == "deadline" for e in delivery_log(env, APP))


# -- 9. identical retries ---------------------------------------------------------------------


def test_a_batch_retried_after_a_client_timeout_is_the_same_request(
    cli_env: dict[str, str],
) -> None:
    """The server accepted the metrics, but answered after the client gave up: the retry
    must repeat that request exactly (a backend can then drop it), even though a new
    record arrived meanwhile (it goes in the next batch)."""
    with OtlpHttpReceiver() as rx:
        rx.set_mode("slow", delay=3, only="metrics")
        env = app_env(cli_env, APP, rx.endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="1000")
        root = state_dir(env, APP)
        spool_records(root, 2)
        assert drain_once(env) == 0
        assert breaker(env, APP)["failures"] == 1  # a real timeout: the breaker opens
        spool_records(root, 1, first=2)
        state = breaker(env, APP)
        state["open_until"] = time.time() - 1  # time passes
        (root / "breaker.json").write_text(json.dumps(state))
        rx.set_mode("ok")
        assert drain_once(env) == 0
        metrics = [r for r in rx.requests if r.signal == "metrics"]
    assert spool_files(env, APP) == []
    assert len(metrics) == 3
    assert metrics[0].body == metrics[1].body, "the retry repeats the first request exactly"
    assert metrics[2].body != metrics[1].body


# -- 10. concurrent writers at the count cap --------------------------------------------------

WRITER = """\
import random, sys, time
from otel_cli_telemetry.handoff import spool
from otel_cli_telemetry.paths import Paths

paths = Paths(sys.argv[1])
line = sys.argv[2].encode()
sys.stdin.read()  # start together
for _ in range(int(sys.argv[3])):
    assert spool.write(paths, line)
    time.sleep(random.uniform(0, 0.02))  # commands, not a tight loop
"""


def test_concurrent_writers_never_exceed_the_count_cap(cli_env: dict[str, str]) -> None:
    root = state_dir(cli_env, APP)
    paths = Paths(str(root))
    spool_records(root, spool.MAX_RECORDS)
    writers, each = 12, 10
    line = json.dumps(record(5000))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), line, str(each)],
            env=cli_env,
            stdin=subprocess.PIPE,
        )
        for _ in range(writers)
    ]
    most = samples = 0
    stop = threading.Event()

    def watch() -> None:
        # A directory listing is no snapshot: one taken while files are deleted and created
        # may see both. Counting under the spool lock (which writers near the cap hold while
        # they make room and write) gives a true count of what the writers' protocol allows.
        nonlocal most, samples
        while not stop.is_set():
            fd = try_lock_fd(str(root / "spool.lock"))
            if fd is not None:
                most = max(most, spool.count(paths))
                samples += 1
                os.close(fd)
            time.sleep(0.001)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(0.5)  # every writer has started (and imported)
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
    try:
        assert [proc.wait(timeout=120) for proc in procs] == [0] * writers
    finally:
        stop.set()
        watcher.join()
    assert samples > 20, "the watcher must actually have looked"
    assert most <= spool.MAX_RECORDS, f"{most} records against a cap of {spool.MAX_RECORDS}"
    assert spool.count(paths) == spool.MAX_RECORDS
    assert spool.pending_drops(paths) == writers * each, "every eviction counted once"
