"""Fault tests with real processes and the real receiver.

- the endpoint down for 50 commands, then up: ``flush`` delivers all 50, each span once;
- drainers SIGKILLed mid-delivery, round after round: no record lost;
- 100 commands in parallel: 100 spans, and never two drainers alive at once;
- a read-only, an uncreatable and a full state dir: output and exit code unchanged;
- CI: in-process delivery within the budget, a silent endpoint costs at most the budget;
- drops (a rejected batch, a corrupt spool file) reported at the receiver on a later span.
"""

from __future__ import annotations

import collections
import contextlib
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from test_delivery_support import (
    DEPLOYCTL,
    admin,
    app_env,
    breaker,
    command_spans,
    delivery_log,
    drainer_pids,
    kill_drainers,
    open_breaker,
    spool_files,
    wait_until,
)

from otlp_receiver import OtlpHttpReceiver, SilentServer, refused_endpoint
from support import run_app, state_dir, wait_for_drainer

APP = "clickapp"


def assert_overhead_recorded(spans: list[dict[str, object]]) -> None:
    """``cli_telemetry.sdk.overhead_ms`` is on every command span: a float, never negative."""
    for span in spans:
        value = span["attributes"]["cli_telemetry.sdk.overhead_ms"]  # type: ignore[index]
        assert isinstance(value, float), span
        assert value >= 0, span


@pytest.mark.slow
def test_endpoint_down_for_50_commands_then_flush_delivers_each_once(
    cli_env: dict[str, str],
) -> None:
    down = refused_endpoint()
    env = app_env(cli_env, "deployctl", down)
    root = state_dir(env, "deployctl")
    for n in range(50):
        result = run_app(DEPLOYCTL, ["deploy", "--stage", f"s{n}"], env)
        assert result.returncode == 0, result.stderr
    wait_for_drainer(env, "deployctl")
    assert drainer_pids(root) == []
    assert len(spool_files(env, "deployctl")) == 50
    attempts = [e for e in delivery_log(env, "deployctl") if e.get("signal") == "traces"]
    assert len(attempts) == 1, "after the first failure the breaker keeps drainers away"
    assert breaker(env, "deployctl")["failures"] == 1

    with OtlpHttpReceiver(port=int(down.rsplit(":", 1)[1])) as rx:
        started = time.monotonic()
        result = admin("deployctl", ["flush"], env)
        flush_s = time.monotonic() - started
        assert result.returncode == 0, result
        assert b"Delivered 50 record(s); 0 waiting." in result.stdout
        spans = command_spans(rx.spans(), "deployctl")
    print(f"\n[measure] flush of 50 records (process start to exit): {flush_s * 1000:.0f} ms")
    counts = collections.Counter(s["span_id"] for s in spans)
    assert len(counts) == 50, "every command arrived"
    assert set(counts.values()) == {1}, "each exactly once"
    assert_overhead_recorded(spans)
    assert spool_files(env, "deployctl") == []
    assert breaker(env, "deployctl")["failures"] == 0


@pytest.mark.slow
def test_drainers_killed_mid_delivery_lose_nothing(cli_env: dict[str, str]) -> None:
    """Each round a command starts a drainer that hangs on a slow receiver and is SIGKILLed;
    the next command's drainer starts at once (no stale lock). Nothing is lost."""
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint)
        root = state_dir(env, APP)
        rx.set_mode("slow", delay=30)
        rounds = 4
        try:
            for n in range(rounds):
                assert run_app("click_app.py", ["deploy"], env).returncode == 0
                assert wait_until(lambda: len(drainer_pids(root)) == 1, timeout=10)
                (pid,) = drainer_pids(root)
                rx.wait_for_requests(n + 1, timeout=10)  # its batch is in flight
                os.kill(pid, signal.SIGKILL)
                assert wait_until(lambda: not drainer_pids(root), timeout=5)
            assert len(spool_files(env, APP)) == rounds
            rx.set_mode("ok")
            assert run_app("click_app.py", ["deploy"], env).returncode == 0
            spans = command_spans(rx.wait_for_spans(1, timeout=5), APP)
            assert wait_until(lambda: not spool_files(env, APP), timeout=20)
            wait_for_drainer(env, APP)
        finally:
            kill_drainers(root)
        spans = command_spans(rx.spans(), APP)
    counts = collections.Counter(s["span_id"] for s in spans)
    assert len(counts) == rounds + 1, "every command's span arrived"
    # A batch sent but not confirmed is sent again as it was (records 1..k would grow with
    # every round): one copy per kill, not a growing batch per kill.
    assert sum(counts.values()) - len(counts) <= rounds


@pytest.mark.slow
def test_100_parallel_commands_one_drainer_at_a_time(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint)
        root = state_dir(env, APP)
        most = 0
        samples = 0
        stop = threading.Event()

        def watch() -> None:
            nonlocal most, samples
            while not stop.is_set():
                most = max(most, len(drainer_pids(root)))
                samples += 1

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            with ThreadPoolExecutor(max_workers=8) as pool:
                results = list(
                    pool.map(lambda _: run_app("click_app.py", ["deploy"], env), range(100))
                )
            assert all(r.returncode == 0 for r in results)
            rx.wait_for_spans(200, timeout=60)  # command + "work" phase for each
            assert wait_until(lambda: not drainer_pids(root), timeout=20)
        finally:
            stop.set()
            watcher.join()
            kill_drainers(root)
        spans = command_spans(rx.spans(), APP)
    assert samples > 100, "the watcher must actually have looked"
    assert most <= 1, f"{most} drainers alive at once"
    counts = collections.Counter(s["span_id"] for s in spans)
    assert len(counts) == 100
    assert_overhead_recorded(spans)
    assert spool_files(env, APP) == []


# -- broken state dirs ----------------------------------------------------------------------


def _can_mount() -> bool:
    return sys.platform.startswith("linux") and os.geteuid() == 0


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "64k") -> Iterator[Path]:
    """A small tmpfs at ``path`` (root only); skip the test where mounting is refused."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


SCENARIOS = [["deploy"], ["deploy", "--do", "exit3"], ["deploy", "--do", "raise"]]


def _same_as_without_telemetry(env: dict[str, str], **run: object) -> None:
    for args in SCENARIOS:
        baseline = run_app("click_app.py", args, {**env, "WITH_TELEMETRY": "0"})
        result = run_app("click_app.py", args, env, **run)  # type: ignore[arg-type]
        assert (result.stdout, result.stderr, result.returncode) == (
            baseline.stdout,
            baseline.stderr,
            baseline.returncode,
        ), args


def test_uncreatable_state_dir(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The state dir's parent is a file: nothing can be created, even by root."""
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    env = app_env(cli_env, APP, refused_endpoint(), XDG_STATE_HOME=str(blocker / "state"))
    _same_as_without_telemetry(env)
    assert drainer_pids(blocker) == []


@pytest.mark.skipif(not _can_mount(), reason="needs root on Linux to mount a tmpfs")
def test_read_only_state_dir(cli_env: dict[str, str], tmp_path: Path) -> None:
    mount = tmp_path / "ro"
    with tmpfs(mount):
        with OtlpHttpReceiver() as rx:
            env = app_env(cli_env, APP, rx.endpoint, XDG_STATE_HOME=str(mount))
            # a working state first (installation id, history, a spooled record)...
            open_breaker(env, APP)
            assert run_app("click_app.py", ["deploy"], env).returncode == 0
            assert len(spool_files(env, APP)) == 1
            # ...then the file system turns read-only
            remount = subprocess.run(
                ["mount", "-o", "remount,ro", str(mount)], capture_output=True, check=False
            )
            assert remount.returncode == 0, remount.stderr
            _same_as_without_telemetry(env)
            assert drainer_pids(state_dir(env, APP)) == []
        # and from scratch: an empty read-only dir
        fresh = tmp_path / "ro2"
    with tmpfs(fresh):
        subprocess.run(["mount", "-o", "remount,ro", str(fresh)], check=True)
        env = app_env(cli_env, APP, refused_endpoint(), XDG_STATE_HOME=str(fresh))
        _same_as_without_telemetry(env)


def test_full_state_dir(cli_env: dict[str, str], tmp_path: Path) -> None:
    """No space left: a tiny tmpfs filled up (root), else a file-size limit of 0 bytes."""
    if _can_mount():
        mount = tmp_path / "full"
        with tmpfs(mount, size="16k"):
            with contextlib.suppress(OSError), open(mount / "filler", "wb") as filler:
                for _ in range(1024):
                    filler.write(b"\0" * 4096)
                    filler.flush()
            with OtlpHttpReceiver() as rx:
                env = app_env(cli_env, APP, rx.endpoint, XDG_STATE_HOME=str(mount))
                _same_as_without_telemetry(env)
                time.sleep(0.3)
                assert rx.requests == []
            assert drainer_pids(mount) == []
        return

    def no_file_growth() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    env = app_env(cli_env, APP, refused_endpoint())
    _same_as_without_telemetry(env, preexec_fn=no_file_growth)


# -- CI: in-process delivery within a budget ------------------------------------------------

CI = {"GITHUB_ACTIONS": "true"}


def _timed(
    args: list[str], env: dict[str, str]
) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    started = time.monotonic()
    result = run_app("click_app.py", args, env)
    return time.monotonic() - started, result


def test_ci_delivers_before_the_command_returns(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint, **CI)
        elapsed, result = _timed(["deploy"], env)
        assert result.returncode == 0
        spans = command_spans(rx.spans(), APP)  # no waiting: it is already there
        assert len(spans) == 1
        assert spans[0]["attributes"]["cli_telemetry.ci.detected"] is True
        assert spool_files(env, APP) == []
        assert drainer_pids(state_dir(env, APP)) == []
    print(f"\n[measure] CI command with in-process delivery: {elapsed * 1000:.0f} ms")


#: The longest request timeout the SDK accepts (ms), far beyond every budget below: on an
#: endpoint that never answers, an attempt that ends sooner was ended by the budget.
LONGEST_TIMEOUT_MS = 10_000
NEVER = str(LONGEST_TIMEOUT_MS)


def _cut_by_the_budget(env: dict[str, str], app: str) -> bool:
    """Whether every delivery attempt ended before the request timeout could end it (the
    drainer logs each attempt's own latency)."""
    attempts = [entry for entry in delivery_log(env, app) if "latency_ms" in entry]
    return bool(attempts) and all(
        float(str(entry["latency_ms"])) < LONGEST_TIMEOUT_MS for entry in attempts
    )


@pytest.mark.slow
@pytest.mark.parametrize("budget", [None, "0.5"], ids=["default-2s", "env-0.5s"])
def test_ci_with_a_silent_endpoint_returns_within_its_budget(
    cli_env: dict[str, str], budget: str | None
) -> None:
    """The budget, not the endpoint, ends the wait: with the longest request timeout and an
    endpoint that never answers, the attempt is cut short and the output is unchanged."""
    baseline = run_app("click_app.py", ["deploy"], {**cli_env, **CI, "WITH_TELEMETRY": "0"})
    with SilentServer() as silent:
        extra = {**CI, "OTEL_EXPORTER_OTLP_TIMEOUT": NEVER}
        if budget:
            extra[f"{APP.upper()}_TELEMETRY_CI_BUDGET"] = budget
        env = app_env(cli_env, APP, silent.endpoint, **extra)
        result = run_app("click_app.py", ["deploy"], env, timeout=60)
        assert (result.stdout, result.stderr, result.returncode) == (
            baseline.stdout,
            baseline.stderr,
            baseline.returncode,
        )
        assert silent.connections == 1, "it tried to deliver"
        assert _cut_by_the_budget(env, APP), delivery_log(env, APP)
        assert len(spool_files(env, APP)) == 1, "not delivered: kept in the spool"


def test_ci_budget_from_init(cli_env: dict[str, str], tmp_path: Path) -> None:
    script = tmp_path / "budgetapp.py"
    script.write_text(
        "import argparse, sys\n"
        "import otel_cli_telemetry as telemetry\n"
        "telemetry.init(app='budgetapp', ci_budget_s=float(sys.argv[1]))\n"
        "argparse.ArgumentParser().parse_args([])\n"
        "print('ok')\n"
    )
    with SilentServer() as silent:
        env = app_env(cli_env, "budgetapp", silent.endpoint, OTEL_EXPORTER_OTLP_TIMEOUT=NEVER, **CI)
        result = run_app(script, ["0"], env, timeout=60)
        assert (result.returncode, result.stdout, result.stderr) == (0, b"ok\n", b"")
        assert silent.connections == 0, "a zero budget means no in-process delivery at all"
        result = run_app(script, ["0.8"], env, timeout=60)
        assert (result.returncode, result.stdout, result.stderr) == (0, b"ok\n", b"")
        assert silent.connections == 1, "tried"
        assert _cut_by_the_budget(env, "budgetapp"), delivery_log(env, "budgetapp")
        assert len(spool_files(env, "budgetapp")) == 2
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, "budgetapp", rx.endpoint, **CI)
        assert run_app(script, ["2"], env).returncode == 0
        assert len(command_spans(rx.spans(), "budgetapp")) == 3, "the earlier two, and this one"


# -- drops, end to end ------------------------------------------------------------------------


def test_drops_are_reported_on_the_next_span(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint)
        rx.set_mode("status", status=400)
        assert run_app("click_app.py", ["deploy"], env).returncode == 0
        rx.wait_for_requests(1)
        wait_for_drainer(env, APP)
        assert spool_files(env, APP) == []
        # a corrupt file appears in the spool too
        spool = state_dir(env, APP) / "spool"
        (spool / "00000000000000000001-1-abcdef.json").write_bytes(b"\x00garbage")
        rx.set_mode("ok")
        rx.clear()
        assert run_app("click_app.py", ["deploy"], env).returncode == 0  # reports the 400
        rx.wait_for_spans(2)
        wait_for_drainer(env, APP)
        assert run_app("click_app.py", ["deploy"], env).returncode == 0  # reports the corrupt file
        rx.wait_for_spans(4)
        wait_for_drainer(env, APP)
        spans = command_spans(rx.spans(), APP)
    dropped = [s["attributes"].get("cli_telemetry.sdk.dropped") for s in spans]
    assert dropped == [1, 1]
    drops = state_dir(env, APP) / "dropped"
    assert not drops.exists() or drops.stat().st_size == 0, "every drop reported once"


def test_a_record_that_cannot_be_spooled_is_counted_and_its_claim_given_back(
    cli_env: dict[str, str],
) -> None:
    """The record claimed 5 earlier drops, then could not be written: 5 + 1 wait for the next."""
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint)
        root = state_dir(env, APP)
        root.mkdir(parents=True)
        (root / "dropped").write_bytes(b"\n" * 5)
        (root / "spool").write_text("a file where the spool dir should be")
        assert run_app("click_app.py", ["deploy"], env).returncode == 0
        assert (root / "dropped").stat().st_size == 6
        (root / "spool").unlink()
        assert run_app("click_app.py", ["deploy"], env).returncode == 0
        rx.wait_for_spans(2)
        wait_for_drainer(env, APP)
        (span,) = command_spans(rx.spans(), APP)
    assert span["attributes"]["cli_telemetry.sdk.dropped"] == 6
