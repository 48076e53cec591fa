"""Every way to turn telemetry off, as real processes, and what "off" means on disk.

Each opt-out is tried where telemetry would otherwise be on and sending (enabled, with a
live OTLP receiver): the command's stdout and exit code stay those of the app without
telemetry, and nothing is recorded, spooled, spawned (checked in ``/proc``) or received.
``status`` names the setting that decided; debug mode prints and sends nothing; the
``_LOG`` file records what is captured whether or not it is sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from otel_cli_telemetry.delivery.lock import DrainerLock

from apps._harness import app_state_dir, drainer_pids, files_under, history
from otlp_receiver import OtlpHttpReceiver
from support import run_app, wait_for_drainer

APPS = {
    "click": ("click_app.py", "clickapp"),
    "typer": ("typer_app.py", "typerapp"),
    "argparse": ("argparse_helper_app.py", "helperapp"),
}
DEPLOY = {"click": ["deploy"], "typer": ["deploy"], "argparse": ["run"]}


def _admin(env: dict[str, str], app: str, *args: str) -> str:
    """Run the admin command ``otel-cli-telemetry --app APP ARGS``; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "otel_cli_telemetry", "--app", app, *args],
        env=env,
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in files_under(root)}


def _assert_nothing_happened(
    env: dict[str, str], app: str, before: dict[str, bytes], receiver: OtlpHttpReceiver
) -> None:
    root = app_state_dir(env, app)
    assert drainer_pids(root) == []
    assert _snapshot(root) == before  # no record, no spool file, no lock, no id, no log
    time.sleep(0.3)
    assert receiver.requests == []


@pytest.mark.parametrize(
    "opt_out",
    [
        {"CLICKAPP_TELEMETRY": "0"},
        {"CLICKAPP_TELEMETRY": "false"},
        {"DO_NOT_TRACK": "1"},
        {"DO_NOT_TRACK": "true"},
        {"OTEL_SDK_DISABLED": "true"},
        {"OTEL_SDK_DISABLED": "TRUE"},
    ],
    ids=lambda env: "-".join(f"{k}={v}" for k, v in env.items()),
)
def test_env_opt_outs_record_nothing(cli_env: dict[str, str], opt_out: dict[str, str]) -> None:
    baseline = run_app("click_app.py", ["deploy", "--force"], {**cli_env, "WITH_TELEMETRY": "0"})
    run_app("click_app.py", ["telemetry", "enable"], cli_env)
    before = _snapshot(app_state_dir(cli_env, "clickapp"))
    with OtlpHttpReceiver() as receiver:
        env = {**cli_env, **opt_out, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        result = run_app("click_app.py", ["deploy", "--force"], env)
        assert (result.stdout, result.stderr, result.returncode) == (
            baseline.stdout,
            baseline.stderr,
            baseline.returncode,
        )
        _assert_nothing_happened(env, "clickapp", before, receiver)
    status = run_app("click_app.py", ["telemetry", "status"], env).stdout.decode()
    assert "Telemetry for clickapp is off." in status
    name = next(iter(opt_out))
    assert f"decided by: {name}" in status


def test_opt_out_on_a_fresh_machine_creates_no_file(cli_env: dict[str, str]) -> None:
    for opt_out in (
        {"CLICKAPP_TELEMETRY": "0"},
        {"DO_NOT_TRACK": "1"},
        {"OTEL_SDK_DISABLED": "true"},
    ):
        env = {**cli_env, **opt_out}
        result = run_app("click_app.py", ["deploy"], env)
        assert (result.returncode, result.stdout) == (0, b"doing ok\n")
        assert not Path(env["XDG_STATE_HOME"]).exists()


def test_extra_opt_out_variable(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "OPT_OUT_ENV": "CONSENTAPP_NO_EVENTS"}
    run_app("consent_app.py", ["telemetry", "enable"], env)
    before = _snapshot(app_state_dir(env, "consentapp"))
    with OtlpHttpReceiver() as receiver:
        off = {**env, "CONSENTAPP_NO_EVENTS": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        assert run_app("consent_app.py", ["run"], off).stdout == b"ran 1\n"
        _assert_nothing_happened(off, "consentapp", before, receiver)
    # The admin command knows the app's extra variable too (saved next to the state).
    assert "decided by: CONSENTAPP_NO_EVENTS is set" in _admin(off, "consentapp", "status")


def test_per_run_flag_turns_off(cli_env: dict[str, str]) -> None:
    run_app("consent_app.py", ["telemetry", "enable"], cli_env)
    before = _snapshot(app_state_dir(cli_env, "consentapp"))
    with OtlpHttpReceiver() as receiver:
        env = {**cli_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        assert run_app("consent_app.py", ["--no-telemetry", "run"], env).stdout == b"ran 1\n"
        _assert_nothing_happened(env, "consentapp", before, receiver)


@pytest.mark.parametrize("surface", ["admin", "click", "typer", "argparse"])
def test_persistent_disable(cli_env: dict[str, str], surface: str) -> None:
    framework = "click" if surface == "admin" else surface
    script, app = APPS[framework]
    run_app(script, ["telemetry", "enable"], cli_env)
    root = app_state_dir(cli_env, app)
    # One record waits in the spool (a drainer "runs": we hold its lock), to be deleted.
    with OtlpHttpReceiver() as receiver:
        env = {**cli_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        lock = DrainerLock(str(root / "drainer.lock"))
        assert lock.acquire()
        try:
            assert run_app(script, DEPLOY[framework], env).returncode == 0
            assert len(list((root / "spool").iterdir())) == 1
        finally:
            lock.release()

        if surface == "admin":
            text = _admin(env, app, "disable")
        else:
            out = run_app(script, ["telemetry", "disable"], env)
            assert out.returncode == 0, out.stderr
            text = out.stdout.decode()
        assert f"Telemetry for {app} is disabled" in text
        assert "1 unsent record(s) deleted" in text
        assert "Telemetry is now off (decided by: state file: disabled)" in text
        assert list((root / "spool").iterdir()) == []
        records = len(history(env, app))

        before = _snapshot(root)
        result = run_app(script, DEPLOY[framework], env)
        assert result.returncode == 0
        _assert_nothing_happened(env, app, before, receiver)
        assert len(history(env, app)) == records

        # ...and back on: the same surface re-enables it.
        if surface == "admin":
            _admin(env, app, "enable")
        else:
            run_app(script, ["telemetry", "enable"], env)
        run_app(script, DEPLOY[framework], env)
        assert receiver.wait_for_spans(1)
        wait_for_drainer(env, app)


def test_telemetry_commands_are_not_recorded(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = {**cli_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        for script, app in APPS.values():
            run_app(script, ["telemetry", "enable"], env)
            for args in (["telemetry"], ["telemetry", "status"], ["telemetry", "schema"]):
                assert run_app(script, args, env).returncode == 0
            assert history(env, app) == []
        time.sleep(0.3)
        assert receiver.requests == []


@pytest.mark.parametrize(
    ("env_extra", "prepare", "expected"),
    [
        ({}, None, "default: off until the notice has been shown"),
        ({}, ["deploy"], "default: on, notice already shown"),
        ({"CLICKAPP_TELEMETRY": "1"}, None, "CLICKAPP_TELEMETRY=1"),
        ({"DO_NOT_TRACK": "1"}, ["telemetry", "enable"], "DO_NOT_TRACK is set"),
        ({}, ["telemetry", "enable"], "state file: enabled"),
        ({}, ["telemetry", "disable"], "state file: disabled"),
        ({"GITHUB_ACTIONS": "true"}, None, "default: on in CI (github_actions), no notice"),
    ],
)
def test_status_explains_why_in_app_and_admin(
    cli_env: dict[str, str], env_extra: dict[str, str], prepare: list[str] | None, expected: str
) -> None:
    if prepare:
        run_app("click_app.py", prepare, cli_env)
    env = {**cli_env, **env_extra}
    in_app = run_app("click_app.py", ["telemetry", "status"], env)
    assert in_app.returncode == 0
    assert f"decided by: {expected}" in in_app.stdout.decode()
    assert f"decided by: {expected}" in _admin(env, "clickapp", "status")


def test_debug_prints_records_and_sends_nothing(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = {
            **cli_env,
            "CLICKAPP_TELEMETRY": "1",
            "CLICKAPP_TELEMETRY_DEBUG": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        }
        result = run_app("click_app.py", ["deploy", "--token", "s3cr3t-value"], env)
        assert (result.returncode, result.stdout) == (0, b"doing ok\n")
        lines = [line for line in result.stderr.decode().splitlines() if "telemetry debug" in line]
        assert len(lines) == 1
        assert lines[0].startswith("[clickapp telemetry debug, not sent] ")
        record = json.loads(lines[0].split("] ", 1)[1])
        assert record["attributes"]["cli_telemetry.command"] == "deploy"
        assert record["attributes"]["cli_telemetry.flags"] == ["--token"]
        assert "s3cr3t-value" not in lines[0]
        _assert_nothing_happened(env, "clickapp", {}, receiver)


def test_log_file_records_what_is_captured_sent_or_not(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "telemetry.jsonl"
    off = {**cli_env, "CLICKAPP_TELEMETRY": "0", "CLICKAPP_TELEMETRY_LOG": str(log)}
    assert run_app("click_app.py", ["deploy"], off).returncode == 0
    (logged,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert logged["attributes"]["cli_telemetry.command"] == "deploy"
    assert not Path(cli_env["XDG_STATE_HOME"]).exists()  # not sent: no state at all

    with OtlpHttpReceiver() as receiver:
        on = {
            **off,
            "CLICKAPP_TELEMETRY": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        }
        assert run_app("click_app.py", ["stage", "new", "x"], on).returncode == 0
        (span,) = receiver.wait_for_spans(1)
        wait_for_drainer(on, "clickapp")
    second = json.loads(log.read_text().splitlines()[1])
    assert second["span_id"] == span["span_id"]
    assert history(on, "clickapp") == [second]


@pytest.mark.parametrize("framework", ["click", "typer"])
def test_injected_disable_on_oldest_supported_frameworks(
    cli_env: dict[str, str], compat_python: str, framework: str
) -> None:
    """click 8.1 and typer < 0.26 (on the click package) get the same subcommand."""
    script, app = APPS[framework]
    out = run_app(script, ["telemetry", "disable"], cli_env, python=compat_python)
    assert out.returncode == 0, out.stderr
    assert "Telemetry is now off (decided by: state file: disabled)" in out.stdout.decode()
    before = _snapshot(app_state_dir(cli_env, app))
    with OtlpHttpReceiver() as receiver:
        env = {**cli_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        assert run_app(script, ["deploy"], env, python=compat_python).returncode == 0
        _assert_nothing_happened(env, app, before, receiver)


def test_telemetry_help_is_not_recorded(cli_env: dict[str, str]) -> None:
    for script, app in APPS.values():
        env = {**cli_env, f"{app.upper()}_TELEMETRY": "1"}
        for args in (["telemetry", "--help"], ["telemetry", "schema", "--help"]):
            result = run_app(script, args, env)
            assert result.returncode == 0
            assert b"--help" in result.stdout
        assert history(env, app) == []
