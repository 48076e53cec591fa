"""``status`` and ``doctor`` tell what the user would otherwise find out the hard way.

- A ``<APP>_TELEMETRY_LOG`` that cannot be written: appends fail silently at run time (the
  host program is never disturbed), so ``status`` names the problem and ``doctor`` exits 1.
- After ``opentelemetry-instrument someone-elses-cli``, ``report`` shows the recorded run;
  ``status`` used to say "off" (what a direct run decides). It now says what the launcher
  decides, and how to change it without the ``telemetry`` subcommand a launcher never adds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT, run_app

DEPLOYCTL = ROOT / "examples" / "deploy" / "deployctl.py"
INSTRUMENT_VENV = ROOT / ".work" / "instrument-venv"


def _admin(env: dict[str, str], *args: str, bin_dir: Path | None = None) -> tuple[str, int]:
    argv = (
        [str(bin_dir / "otel-cli-telemetry"), *args]
        if bin_dir
        else [sys.executable, "-m", "otel_cli_telemetry", *args]
    )
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    return result.stdout + result.stderr, result.returncode


def test_a_log_file_that_cannot_be_written_is_named_by_status_and_doctor(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bad = str(blocker / "records.jsonl")
    env = {**cli_env, "DEPLOYCTL_TELEMETRY": "1", "DEPLOYCTL_TELEMETRY_LOG": bad}

    # The command itself is not disturbed: same exit, nothing on stderr.
    run = run_app(DEPLOYCTL, ["stage", "list"], env)
    assert (run.returncode, run.stderr) == (0, b"")

    injected = run_app(DEPLOYCTL, ["telemetry", "status"], env).stdout.decode()
    admin, _ = _admin(env, "--app", "deployctl", "status")
    for text in (injected, admin):
        assert f"log file:   {bad}: CANNOT be written ({blocker} is not a directory)" in text
    text, code = _admin(env, "--app", "deployctl", "doctor")
    assert "CANNOT be written" in text
    assert code == 1

    good = {**env, "DEPLOYCTL_TELEMETRY_LOG": "records.jsonl"}
    result = subprocess.run(
        [sys.executable, str(DEPLOYCTL), "telemetry", "status"],
        env=good,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert f"log file:   {tmp_path / 'records.jsonl'}\n" in result.stdout
    assert "CANNOT" not in result.stdout
    assert _admin(good, "--app", "deployctl", "doctor")[1] == 0


@pytest.fixture(scope="module")
def instrument_bin() -> Path:
    """The venv with opentelemetry-instrument and sqlite-utils (setup-venv.sh, idempotent)."""
    result = subprocess.run(
        ["bash", str(ROOT / "examples" / "instrument" / "setup-venv.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"setup-venv.sh failed:\n{result.stdout}\n{result.stderr}")
    return INSTRUMENT_VENV / "bin"


def test_status_agrees_with_report_after_an_opentelemetry_instrument_run(
    instrument_bin: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in cli_env.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{instrument_bin}{os.pathsep}{env['PATH']}"
    subprocess.run(
        [str(instrument_bin / "sqlite-utils"), "create-table", "t.db", "items", "id", "integer"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    run = subprocess.run(
        [str(instrument_bin / "opentelemetry-instrument"), "sqlite-utils", "tables", "t.db"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr

    report, _ = _admin(env, "--app", "sqlite-utils", "report", bin_dir=instrument_bin)
    assert report.startswith("sqlite-utils: 1 command(s) recorded on this machine")
    status, code = _admin(env, "--app", "sqlite-utils", "status", bin_dir=instrument_bin)
    assert code == 0
    assert status.startswith(
        "Telemetry for sqlite-utils is on.\n"
        "  decided by: opentelemetry-instrument: the operator's opt-in\n"
    ), status
    # No `sqlite-utils telemetry` subcommand exists: status names the admin command.
    assert "change: `otel-cli-telemetry --app sqlite-utils enable|disable`" in status

    # An explicit "no" wins under the launcher too, and status says so.
    _admin(env, "--app", "sqlite-utils", "disable", bin_dir=instrument_bin)
    status, _ = _admin(env, "--app", "sqlite-utils", "status", bin_dir=instrument_bin)
    assert status.startswith(
        "Telemetry for sqlite-utils is off.\n  decided by: state file: disabled\n"
    ), status


def test_an_app_never_run_under_the_launcher_gets_the_plain_status(
    cli_env: dict[str, str],
) -> None:
    env = {**cli_env, "DEPLOYCTL_TELEMETRY": "1"}
    assert run_app(DEPLOYCTL, ["stage", "list"], env).returncode == 0
    status, _ = _admin(env, "--app", "deployctl", "status")
    assert status.startswith("Telemetry for deployctl is on.\n  decided by: DEPLOYCTL_TELEMETRY=1")
    assert "opentelemetry-instrument" not in status
    assert "change: `deployctl telemetry enable|disable`" in status
