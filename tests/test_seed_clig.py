"""Seed 001 (CLI guidelines, "Collecting analytics"), end to end with examples/clig/repoctl.py.

The chapter asks for: OS and version; success rate and exit codes; an event even on a
catastrophic failure; no hang when the analytics endpoint is slow; flag usage; versions of the
tools the CLI depends on. And it warns against collecting error messages (private data).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import pytest

from test_delivery_support import delivery_log, drainer_pids, wait_until

from otlp_receiver import OtlpHttpReceiver, SilentServer
from seed_support import (
    assert_never_sent,
    finish,
    only_command_span,
    run_example,
    sending_env,
    spooled,
    wait_for_commands,
)
from support import exit_status, state_dir

APP = "repoctl"
SCRIPT = "clig/repoctl.py"


@pytest.fixture
def fake_git(tmp_path: Path, cli_env: dict[str, str]) -> dict[str, str]:
    """``cli_env`` with a slow ``git`` first on PATH: each call is logged in ``GIT_CALLS``,
    then waits until the file ``GIT_GATE`` exists (at most 60 s), then prints a version and
    some noise. A command that waited for git would still be waiting."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git = bin_dir / "git"
    git.write_text(
        "#!/bin/sh\n"
        'echo called >> "$GIT_CALLS"\n'
        "i=0\n"
        'while [ ! -e "$GIT_GATE" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done\n'
        "echo 'git version 9.9.9 (Apple Git-1) /Users/alice'\n"
    )
    git.chmod(0o755)
    return {
        **cli_env,
        "PATH": f"{bin_dir}{os.pathsep}{cli_env['PATH']}",
        "GIT_CALLS": str(tmp_path / "git-calls"),
        "GIT_GATE": str(tmp_path / "git-gate"),
    }


def _git_calls(env: dict[str, str]) -> int:
    calls = Path(env["GIT_CALLS"])
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_os_version_exit_codes_and_success_rate(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver, REPOCTL_TELEMETRY="1")
        assert run_example(SCRIPT, ["status"], env).returncode == 0
        assert exit_status(run_example(SCRIPT, ["sync", "--fail", "3"], env).returncode) == 3
        assert run_example(SCRIPT, ["sync"], env).returncode == 0
        spans = wait_for_commands(receiver, 3)
        receiver.wait_for_metrics(
            lambda _: len(receiver.points("cli_telemetry.command.duration")) >= 3, timeout=20
        )
        durations = receiver.points("cli_telemetry.command.duration")
        finish(env, APP)
    outcomes = sorted(
        (
            s["attributes"]["cli_telemetry.command"],
            s["attributes"]["process.exit.code"],
            s["status_code"],
        )
        for s in spans
    )
    assert outcomes == [("status", 0, "UNSET"), ("sync", 0, "UNSET"), ("sync", 3, "ERROR")]
    for span in spans:
        resource = span["resource"]
        assert resource["os.type"] == platform.system().lower()
        assert resource["os.version"] == platform.release()
        assert resource["service.version"] == "2.1.0"
        assert resource["host.arch"]
    # the success rate, from the metric alone: 2 of 3 commands exited 0
    codes = [p["attributes"]["process.exit.code"] for p in durations]
    assert sorted(codes) == [0, 0, 3]
    assert sum(1 for c in codes if c == 0) / len(codes) == pytest.approx(2 / 3)


def test_crash_still_sends_its_event_without_the_message(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver, REPOCTL_TELEMETRY="1")
        result = run_example(SCRIPT, ["crash"], env)
        assert exit_status(result.returncode) == 1
        assert b"RuntimeError: corrupt index" in result.stderr  # the user's traceback is intact
        (span,) = wait_for_commands(receiver, 1)
        finish(env, APP)
    assert span["attributes"]["cli_telemetry.command"] == "crash"
    assert span["attributes"]["process.exit.code"] == 1
    assert span["attributes"]["error.type"] == "RuntimeError"
    assert span["status_code"] == "ERROR"
    assert span["status_message"] == ""
    assert_never_sent(receiver, "corrupt index", cli_env["HOME"], "Traceback", "repoctl.py")


@pytest.mark.parametrize("ci", [False, True], ids=["local", "ci"])
def test_a_silent_endpoint_never_holds_the_command(cli_env: dict[str, str], ci: bool) -> None:
    """An endpoint that never answers, with the longest request timeout. Locally the command
    returns while its drainer is still blocked on that endpoint; in CI it tries once
    in-process, gives up on its budget (default 2 s) and keeps the record in the spool."""
    extra = {"GITHUB_ACTIONS": "true"} if ci else {}
    baseline = run_example(SCRIPT, ["status"], {**cli_env, **extra, "REPOCTL_TELEMETRY": "0"})
    assert baseline.returncode == 0, baseline.stderr
    with SilentServer() as silent:
        env = {
            **cli_env,
            **extra,
            "REPOCTL_TELEMETRY": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": silent.endpoint,
            "OTEL_EXPORTER_OTLP_TIMEOUT": "10000",
        }
        result = run_example(SCRIPT, ["status"], env, timeout=60)  # a liveness guard
        assert (result.returncode, result.stdout, result.stderr) == (
            baseline.returncode,
            baseline.stdout,
            baseline.stderr,
        )
        if ci:
            assert silent.connections == 1, "it tried to deliver"
            attempts = [entry for entry in delivery_log(env, APP) if "latency_ms" in entry]
            assert attempts, "the attempt is logged"
            assert all(float(str(e["latency_ms"])) < 10_000 for e in attempts), (
                "the budget, not the request timeout, ended the attempt"
            )
            assert len(spooled(env, APP)) == 1, "not delivered: kept in the spool"
        else:
            assert wait_until(lambda: silent.connections == 1, timeout=30)
            assert drainer_pids(state_dir(env, APP)), "the drainer still waits; the CLI did not"
        finish(env, APP)


def test_flags_are_names_only(cli_env: dict[str, str]) -> None:
    remote = "https://alice:hunter2@git.example.com/team/repo.git"
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver, REPOCTL_TELEMETRY="1")
        result = run_example(SCRIPT, ["sync", "-r", remote, "--dry-run"], env)
        assert result.returncode == 0
        spans = receiver.wait_for_spans(2)
        finish(env, APP)
    span = only_command_span(spans)
    assert span["attributes"]["cli_telemetry.flags"] == ["--dry-run", "--remote"]
    assert_never_sent(receiver, "hunter2", "alice", "git.example.com", "team/repo")


def test_dependency_versions_are_collected_off_the_hot_path(fake_git: dict[str, str]) -> None:
    cache = Path(fake_git["XDG_CACHE_HOME"]) / "repoctl" / "deps.json"
    with OtlpHttpReceiver() as receiver:
        env = sending_env(fake_git, receiver, REPOCTL_TELEMETRY="1")
        # First run: no cache yet. The command returns while git, started in the
        # background, is still held at its gate: it did not wait for git.
        assert run_example(SCRIPT, ["status"], env).returncode == 0
        assert wait_until(lambda: _git_calls(env) == 1, timeout=30)
        assert not cache.exists()
        # git answers (before the example's own 5 s limit on it); the background step fills
        # the cache; later runs read it (one small file) and start no git at all.
        Path(env["GIT_GATE"]).touch()
        (first,) = wait_for_commands(receiver, 1)
        assert "deps.git.version" not in first["attributes"]
        assert wait_until(cache.exists, timeout=30), "the background refresh never wrote it"
        assert run_example(SCRIPT, ["status"], env).returncode == 0
        spans = wait_for_commands(receiver, 2)
        assert _git_calls(env) == 1
        finish(env, APP)
    second = spans[1] if spans[0] is first or spans[0]["span_id"] == first["span_id"] else spans[0]
    assert second["attributes"]["deps.git.version"] == "9.9.9"
    assert_never_sent(receiver, "Apple Git", "/Users/alice")


def test_no_dependency_probe_while_telemetry_is_off(fake_git: dict[str, str]) -> None:
    env = {**fake_git, "REPOCTL_TELEMETRY": "0"}
    assert run_example(SCRIPT, ["status"], env).returncode == 0
    time.sleep(0.5)
    assert not (Path(fake_git["XDG_CACHE_HOME"]) / "repoctl").exists()
