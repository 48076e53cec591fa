"""Seed 004 (SST's "Anonymous Telemetry"), end to end with examples/sst/sst.py.

Collected: the command, SST's version, the number of CPUs, the OS, whether it ran in CI.
Control: ``sst telemetry [status]|enable|disable`` and ``SST_TELEMETRY_DISABLED=1``. Never:
environment variables, file paths, file contents, logs, serialized errors.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from otlp_receiver import OtlpHttpReceiver
from seed_support import (
    assert_never_sent,
    assert_nothing_sent,
    finish,
    run_example,
    sending_env,
    wait_for_commands,
)
from support import exit_status

APP = "sst"
SCRIPT = "sst/sst.py"


def test_command_version_cpus_and_os(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver, SST_TELEMETRY="1")
        for args in (["start", "--stage", "alice-dev"], ["deploy", "--stage", "prod"]):
            result = run_example(SCRIPT, args, env)
            assert result.returncode == 0, result.stderr
        spans = wait_for_commands(receiver, 2)
        finish(env, APP)
    by_command = {s["attributes"]["cli_telemetry.command"]: s for s in spans}
    assert set(by_command) == {"start", "deploy"}
    assert by_command["start"]["name"] == "sst start"  # SST's CLI_COMMAND {"command": "start"}
    for span in spans:
        assert span["resource"]["service.version"] == "2.43.6"
        assert span["attributes"]["sst.machine.cpus"] == os.cpu_count()
        assert span["resource"]["os.type"] == platform.system().lower()
        assert span["attributes"]["cli_telemetry.ci.detected"] is False
        assert "cli_telemetry.ci.provider" not in span["attributes"]
    assert_never_sent(receiver, "alice-dev")


def test_ci_is_detected_and_delivered_within_the_run(cli_env: dict[str, str]) -> None:
    """In CI there is no notice, the first run is recorded, and it is sent before exit."""
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver, GITHUB_ACTIONS="true", CI="true")
        result = run_example(SCRIPT, ["build", "--config", os.devnull], env)
        assert result.returncode == 0, result.stderr
        assert result.stderr == b""  # no notice in CI
        (span,) = wait_for_commands(receiver, 1, timeout=1)  # already delivered at exit
        finish(env, APP)
    assert span["attributes"]["cli_telemetry.ci.detected"] is True
    assert span["attributes"]["cli_telemetry.ci.provider"] == "github_actions"
    assert span["attributes"]["cli_telemetry.command"] == "build"


def test_telemetry_status_disable_enable(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver)
        status = run_example(SCRIPT, ["telemetry"], env)
        assert status.returncode == 0
        assert b"Telemetry for sst is" in status.stdout
        disabled = run_example(SCRIPT, ["telemetry", "disable"], env)
        assert disabled.returncode == 0
        assert b"disabled" in disabled.stdout
        assert b"is off" in run_example(SCRIPT, ["telemetry", "status"], env).stdout
        assert run_example(SCRIPT, ["start"], env).returncode == 0
        assert_nothing_sent(receiver, env, APP, wait=0.5)
        assert run_example(SCRIPT, ["telemetry", "enable"], env).returncode == 0
        assert b"is on" in run_example(SCRIPT, ["telemetry"], env).stdout
        assert run_example(SCRIPT, ["start"], env).returncode == 0
        (span,) = wait_for_commands(receiver, 1)
        finish(env, APP)
    assert span["attributes"]["cli_telemetry.command"] == "start"


def test_env_var_opt_out(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver)
        assert run_example(SCRIPT, ["telemetry", "enable"], env).returncode == 0
        opted_out = {**env, "SST_TELEMETRY_DISABLED": "1"}
        result = run_example(SCRIPT, ["deploy"], opted_out)
        assert result.returncode == 0
        assert result.stderr == b""
        assert_nothing_sent(receiver, env, APP, wait=0.5)


def test_never_env_paths_contents_logs_or_errors(cli_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "secret-app" / "sst.config.ts"
    config.parent.mkdir()
    config.write_text("export default { app: 'acme-payments-9911' }\n")
    missing = tmp_path / "nowhere" / "sst.config.ts"
    with OtlpHttpReceiver() as receiver:
        env = sending_env(
            cli_env, receiver, SST_TELEMETRY="1", AWS_SECRET_ACCESS_KEY="env-secret-Qw12Er34"
        )
        ok = run_example(SCRIPT, ["build", "--config", str(config)], env)
        assert ok.returncode == 0
        failed = run_example(SCRIPT, ["build", "--config", str(missing)], env)
        assert exit_status(failed.returncode) == 1
        assert b"FileNotFoundError: no config at" in failed.stderr  # the user's own log
        spans = wait_for_commands(receiver, 2)
        finish(env, APP)
    (error,) = [s for s in spans if s["attributes"]["process.exit.code"] == 1]
    assert error["attributes"]["error.type"] == "FileNotFoundError"
    assert error["status_message"] == ""
    assert_never_sent(
        receiver,
        "env-secret-Qw12Er34",
        str(tmp_path),
        "secret-app",
        "acme-payments-9911",
        "no config at",
        "Traceback",
        "Built",
    )
