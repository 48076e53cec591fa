"""The detached drainer as a real process: single flight, stale-lock recovery after SIGKILL,
no zombies in a long-running host, nothing started while telemetry is off, no terminal, no
inherited descriptors, bounded run time, the breaker across runs, and Windows' flags."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from otel_cli_telemetry.delivery.lock import DrainerLock, held_by_someone
from otel_cli_telemetry.handoff import spawn
from test_delivery_support import (
    admin,
    app_env,
    breaker,
    command_spans,
    delivery_log,
    drain_with_importtime,
    drainer_pids,
    kill_drainers,
    open_breaker,
    spool_files,
    start_drainer,
    wait_until,
    zombie_children,
)

from otlp_receiver import OtlpHttpReceiver, SilentServer, refused_endpoint
from support import APPS, run_app, state_dir, wait_for_drainer

APP = "clickapp"
MAX_RUNTIME = "OTEL_CLI_TELEMETRY_DRAINER_MAX_RUNTIME"


def test_a_second_drainer_exits_at_once_and_sigkill_leaves_no_stale_lock(
    cli_env: dict[str, str],
) -> None:
    """flock dies with its holder: after SIGKILL the next drainer takes over immediately."""
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint)
        open_breaker(env, APP)
        for _ in range(3):
            assert run_app("click_app.py", ["deploy"], env).returncode == 0
        assert len(spool_files(env, APP)) == 3
        (state_dir(env, APP) / "breaker.json").unlink()
        rx.set_mode("slow", delay=30)
        root = state_dir(env, APP)
        first = start_drainer(env, APP)
        try:
            rx.wait_for_requests(1, timeout=10)  # it holds the lock and waits on the receiver
            assert held_by_someone(str(root / "drainer.lock"))
            second = start_drainer(env, APP)
            assert second.wait(timeout=10) == 0, "a second drainer must leave at once"
            assert first.poll() is None
            assert len(rx.requests) == 1
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=5)
            assert not held_by_someone(str(root / "drainer.lock")), "no stale lock"
            rx.set_mode("ok")
            third = start_drainer(env, APP)
            assert third.wait(timeout=20) == 0
        finally:
            kill_drainers(root)
        assert spool_files(env, APP) == []
        spans = command_spans(rx.spans(), APP)
        assert len({s["span_id"] for s in spans}) == 3


def test_the_spawning_cli_hands_its_lock_to_the_drainer(cli_env: dict[str, str]) -> None:
    """Between spawn and start-up no other command can start a second drainer."""
    with SilentServer() as silent:
        env = app_env(cli_env, APP, silent.endpoint, **{MAX_RUNTIME: "5"})
        assert run_app("click_app.py", ["deploy"], env).returncode == 0
        root = state_dir(env, APP)
        try:
            assert wait_until(lambda: drainer_pids(root), timeout=5)
            (pid,) = drainer_pids(root)
            assert wait_until(lambda: silent.connections >= 1, timeout=10)
            assert (root / "drainer.lock").read_text() == str(pid), "the drainer adopted the lock"
            for _ in range(3):
                assert run_app("click_app.py", ["deploy"], env).returncode == 0
            assert drainer_pids(root) == [pid]
        finally:
            kill_drainers(root)


def test_the_drainer_is_detached_from_the_terminal_and_the_caller(
    cli_env: dict[str, str],
) -> None:
    """New session, stdio on /dev/null, the CLI's cwd let go, no inherited descriptor."""
    read_end, write_end = os.pipe()
    with SilentServer() as silent:
        env = app_env(
            cli_env, APP, silent.endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="10000",
            **{MAX_RUNTIME: "8"},
        )
        root = state_dir(env, APP)
        cli = subprocess.Popen(
            [sys.executable, str(APPS / "click_app.py"), "deploy"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(write_end,),  # e.g. a jobserver pipe, or a parent's extra stdio
            cwd=str(Path(env["HOME"])),
        )
        os.close(write_end)
        out, _err = cli.communicate(timeout=20)
        try:
            assert cli.returncode == 0
            assert out == b"doing ok\n"
            # the caller's pipe reaches EOF when the CLI exits, not when the drainer does:
            # the drainer, blocked on the silent endpoint until its time limit, is still there
            os.set_blocking(read_end, True)
            assert os.read(read_end, 1) == b""
            assert wait_until(lambda: drainer_pids(root), timeout=5)
            (pid,) = drainer_pids(root)
            assert wait_until(lambda: silent.connections >= 1, timeout=10)
            assert os.getsid(pid) == pid, "session leader: no controlling terminal"
            for fd in (0, 1, 2):
                assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null"
            assert os.readlink(f"/proc/{pid}/cwd") == str(root)
            pipes = [
                os.readlink(f"/proc/{pid}/fd/{fd}")
                for fd in os.listdir(f"/proc/{pid}/fd")
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("pipe:")
            ]
            assert pipes == [], f"inherited pipes: {pipes}"
        finally:
            os.close(read_end)
            kill_drainers(root)


@pytest.mark.parametrize(
    "switch",
    [{"CLICKAPP_TELEMETRY": "0"}, {"DO_NOT_TRACK": "1"}, {"OTEL_SDK_DISABLED": "true"}],
    ids=["app-switch", "do-not-track", "otel-sdk-disabled"],
)
def test_no_spool_and_no_drainer_while_telemetry_is_off(
    cli_env: dict[str, str], switch: dict[str, str]
) -> None:
    with OtlpHttpReceiver() as rx:
        env = {**cli_env, "OTEL_EXPORTER_OTLP_ENDPOINT": rx.endpoint}
        # consented with `enable` (the app's own switch would outrank the cross-tool ones)
        assert admin(APP, ["enable"], env).returncode == 0
        env.update(switch)
        seen: list[int] = []
        stop = threading.Event()
        root = state_dir(env, APP)

        def watch() -> None:
            while not stop.is_set():
                seen.extend(drainer_pids(root))
                time.sleep(0.005)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            for _ in range(3):
                assert run_app("click_app.py", ["deploy"], env).returncode == 0
            time.sleep(0.5)
        finally:
            stop.set()
            watcher.join()
        assert seen == []
        assert rx.requests == []
    assert not (root / "spool").exists()
    assert not (root / "drainer.lock").exists()


def test_no_drainer_when_nothing_was_spooled(cli_env: dict[str, str], tmp_path: Path) -> None:
    """No endpoint: records stay in the local history; no spool, no process."""
    env = app_env(cli_env, APP, None)
    assert run_app("click_app.py", ["deploy"], env).returncode == 0
    root = state_dir(env, APP)
    assert (root / "records.jsonl").exists()
    assert not (root / "spool").exists()
    assert drainer_pids(root) == []


def test_after_a_failure_commands_start_no_drainer_until_the_breaker_reopens(
    cli_env: dict[str, str],
) -> None:
    env = app_env(cli_env, APP, refused_endpoint())
    root = state_dir(env, APP)
    assert run_app("click_app.py", ["deploy"], env).returncode == 0
    wait_for_drainer(env, APP)
    assert wait_until(lambda: breaker(env, APP).get("failures") == 1, timeout=10)
    attempts = len([e for e in delivery_log(env, APP) if e.get("signal") == "traces"])
    assert attempts == 1
    for _ in range(4):
        assert run_app("click_app.py", ["deploy"], env).returncode == 0
        assert drainer_pids(root) == []
    time.sleep(0.3)
    assert len([e for e in delivery_log(env, APP) if e.get("signal") == "traces"]) == 1
    assert len(spool_files(env, APP)) == 5
    # the breaker lapses: the next command's drainer delivers everything
    with OtlpHttpReceiver(port=int(env["OTEL_EXPORTER_OTLP_ENDPOINT"].rsplit(":", 1)[1])) as rx:
        state = breaker(env, APP)
        state["open_until"] = time.time() - 1
        import json

        (root / "breaker.json").write_text(json.dumps(state))
        assert run_app("click_app.py", ["deploy"], env).returncode == 0
        rx.wait_for_spans(12, timeout=20)
        wait_for_drainer(env, APP)
    assert spool_files(env, APP) == []
    assert breaker(env, APP)["failures"] == 0


def test_a_silent_endpoint_never_delays_the_cli_and_the_drainer_stops_in_time(
    cli_env: dict[str, str],
) -> None:
    """The command returns while its drainer is still blocked on an endpoint that never
    answers (so it did not wait for the network), and the drainer's own run-time limit, not
    its 10 s request timeout, ends that drainer."""
    baseline = run_app("click_app.py", ["deploy"], {**cli_env, "WITH_TELEMETRY": "0"})
    with SilentServer() as silent:
        env = app_env(
            cli_env, APP, silent.endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="10000",
            **{MAX_RUNTIME: "3"},
        )
        root = state_dir(env, APP)
        result = run_app("click_app.py", ["deploy"], env)
        assert (result.stdout, result.stderr, result.returncode) == (
            baseline.stdout,
            baseline.stderr,
            baseline.returncode,
        )
        assert wait_until(lambda: silent.connections == 1, timeout=30)
        assert drainer_pids(root), "the drainer still waits on the endpoint; the CLI did not"
        assert wait_until(lambda: not drainer_pids(root), timeout=60)
    requests = [entry for entry in delivery_log(env, APP) if "latency_ms" in entry]
    assert requests, "the drainer logged its attempt"
    assert all(float(str(e["latency_ms"])) < 10_000 for e in requests), "none ran to its timeout"
    assert len(spool_files(env, APP)) == 1, "undelivered: kept"


def test_no_zombies_in_a_host_that_runs_commands_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """click's CliRunner in a loop: each command may start a drainer; none is left <defunct>."""
    import click
    from click.testing import CliRunner

    import otel_cli_telemetry as telemetry

    root = tmp_path / "state"
    with OtlpHttpReceiver() as rx:
        monkeypatch.setenv("RUNNERAPP_TELEMETRY", "1")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint)
        telemetry.init(app="runnerapp", state_dir=str(root))

        @click.command()
        def hello() -> None:
            click.echo("hi")

        spawned: list[int] = []
        real_start = spawn.start_drainer_if_needed

        def counting(settings: Any) -> int | None:
            pid = real_start(settings)
            if pid is not None:
                spawned.append(pid)
            return pid

        monkeypatch.setattr(spawn, "start_drainer_if_needed", counting)
        runner = CliRunner()
        for n in range(6):
            assert runner.invoke(hello, []).output == "hi\n"
            rx.wait_for_spans(n + 1, timeout=20)
            assert wait_until(lambda: not drainer_pids(root), timeout=10)
        assert len(spawned) >= 2, "the loop should have started several drainers"
        assert wait_until(lambda: not zombie_children(), timeout=5), zombie_children()
        assert len(command_spans(rx.spans(), "runnerapp")) == 6


def test_windows_creation_flags() -> None:
    flags = spawn.windows_creation_flags()
    detached, new_group, no_window = 0x00000008, 0x00000200, 0x08000000
    new_console, breakaway = 0x00000010, 0x01000000
    assert flags & no_window
    assert flags & detached
    assert flags & new_group
    assert not flags & new_console, "a new console is a window flashing on the user's screen"
    assert not flags & breakaway, "breakaway fails outright in jobs that forbid it"


def test_the_windows_spawn_uses_them_and_inherits_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class FakePopen:
        pid = 4242

        def __init__(self, argv: list[str], **kwargs: Any) -> None:
            seen.update(kwargs, argv=argv)

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    assert spawn._spawn_windows(["python", "-m", "x"], {"A": "1"}) == 4242
    assert seen["creationflags"] == spawn.windows_creation_flags()
    assert seen["close_fds"] is True
    for stream in ("stdin", "stdout", "stderr"):
        assert seen[stream] == subprocess.DEVNULL


def test_frozen_apps_spawn_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a PyInstaller app sys.executable is the app: ``-m drainer`` would rerun the CLI."""
    from otel_cli_telemetry.config import InitOptions, resolve

    settings = resolve(
        InitOptions(app="frozenapp", state_dir=str(tmp_path)),
        {"FROZENAPP_TELEMETRY": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
        interactive=False,
    )
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert spawn.start_drainer_if_needed(settings) is None
    assert not held_by_someone(str(tmp_path / "drainer.lock"))


def test_lock_adoption_checks_the_descriptor(tmp_path: Path) -> None:
    lock_path = str(tmp_path / "drainer.lock")
    other = os.open(str(tmp_path / "other"), os.O_RDWR | os.O_CREAT)
    Path(lock_path).touch()
    assert not DrainerLock(lock_path).adopt(other), "not the lock file"
    holder = DrainerLock(lock_path)
    assert holder.acquire()
    foreign = os.open(lock_path, os.O_RDWR)
    assert not DrainerLock(lock_path).adopt(foreign), "locked by someone else"
    holder.release()


def test_admin_flush_reaches_through_an_open_breaker(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint)
        open_breaker(env, APP)
        for _ in range(2):
            assert run_app("click_app.py", ["deploy"], env).returncode == 0
        assert len(spool_files(env, APP)) == 2
        assert rx.requests == []
        result = admin(APP, ["flush"], env)
        assert result.returncode == 0, result
        assert b"Delivered 2 record(s); 0 waiting." in result.stdout
        assert result.stderr == b"", "no progress bar when stderr is not a terminal"
        assert len(command_spans(rx.spans(), APP)) == 2
    assert breaker(env, APP)["failures"] == 0


def test_the_watchdog_ends_a_drainer_stuck_past_its_bound(cli_env: dict[str, str]) -> None:
    """Whatever hangs (a DNS lookup has no socket timeout), the process ends on time."""
    code = (
        "import time\n"
        "from otel_cli_telemetry.delivery.drainer import _watchdog\n"
        "_watchdog(0.5)\n"
        "time.sleep(3600)\n"
    )
    # returning at all, with the watchdog's exit code, proves the watchdog ended it
    done = subprocess.run([sys.executable, "-c", code], env=cli_env, timeout=60, check=False)
    assert done.returncode == 3


def test_a_drainer_delivers_without_importing_protobuf(cli_env: dict[str, str]) -> None:
    """Issue 12: ``google.protobuf`` and the ``opentelemetry.proto`` messages were ~25 ms of
    every drainer start. The requests are written by ``protowire``, and the receiver's empty
    success answers need no parsing: a whole drain imports none of them."""
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint)
        open_breaker(env, APP)  # spool only: the drainer below is the one measured
        for args in (["deploy"], ["deploy", "--do", "raise", "-f"], ["stage", "new", "x"]):
            run_app("click_app.py", args, env)
        assert len(spool_files(env, APP)) == 3
        (state_dir(env, APP) / "breaker.json").unlink()
        modules = drain_with_importtime(env, APP)
        assert spool_files(env, APP) == [], "delivered"
        assert len(command_spans(rx.spans(), APP)) == 3
        assert {"app.items.processed", "cli_telemetry.command.duration"} <= {
            m["name"] for m in rx.metrics()
        }
        assert "otel_cli_telemetry.delivery.encode" in modules  # the listing is complete
        assert "otel_cli_telemetry.delivery.protowire" in modules
        heavy = sorted(m for m in modules if m.startswith(("google", "opentelemetry")))
        assert heavy == []
        # Nor typing (~40 M instructions with the re it imports) or json (~5 M): nothing
        # else in a drainer process loads them, so each module keeps them out too.
        assert {"typing", "re", "json"} & modules == set()
