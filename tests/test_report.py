"""``report``: the local history summarised, read from records the real CLI wrote."""

from __future__ import annotations

import json
import subprocess
import sys

from otel_cli_telemetry.schema import RENAMED_ATTRIBUTES

from support import ROOT, run_app, state_dir

DEPLOYCTL = ROOT / "examples" / "deploy" / "deployctl.py"


def _admin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otel_cli_telemetry", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_report_of_real_runs_counts_each_command_and_names_each_column_once(
    cli_env: dict[str, str],
) -> None:
    env = {**cli_env, "DEPLOYCTL_TELEMETRY": "1"}
    runs = [
        (["deploy", "--stage", "dev"], 0),
        (["deploy", "--stage", "dev", "--fail", "quota"], 1),
        (["deploy", "--no-such-flag"], 2),
        (["stage", "new", "preview"], 0),
        (["exit", "3"], 3),
    ]
    for args, code in runs:
        assert run_app(DEPLOYCTL, args, env).returncode == code, args
    result = _admin(env, "--app", "deployctl", "report")
    text = result.stdout
    assert result.returncode == 0, result.stderr

    lines = text.splitlines()
    assert lines[0].startswith("deployctl: 5 command(s) recorded on this machine, ")
    assert lines[1] == "failure rate 60%"
    (header,) = [line for line in lines if line.startswith("command")]
    assert header.split() == ["command", "runs", "failed", "fail", "%", "p50", "p95"]
    rows = {line[:22].strip(): line[22:].split() for line in lines[lines.index(header) + 1 :]}
    assert rows["deploy"][:3] == ["3", "2", "67%"]
    assert rows["stage new"][:3] == ["1", "0", "0%"]
    assert rows["exit"][:3] == ["1", "1", "100%"]
    assert "exit codes: 0 ×2, 1 ×1, 2 ×1, 3 ×1" in lines


def test_report_with_nothing_recorded(cli_env: dict[str, str]) -> None:
    result = _admin(cli_env, "--app", "nothing", "report")
    assert result.returncode == 0
    assert result.stdout.strip() == "No telemetry recorded for nothing on this machine yet."


def test_history_written_before_the_rename_still_counts(cli_env: dict[str, str]) -> None:
    """History lines of the previous release name the command ``cli.command``: an upgrade
    must not blank the report (the old names are read through ``schema.lookup``)."""
    env = {**cli_env, "DEPLOYCTL_TELEMETRY": "1"}
    for args in (["deploy", "--stage", "dev"], ["stage", "new", "preview"]):
        assert run_app(DEPLOYCTL, args, env).returncode == 0, args
    history = state_dir(env, "deployctl") / "records.jsonl"
    previous = {new: old for old, new in RENAMED_ATTRIBUTES.items()}
    old_lines = []
    for line in history.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record["attributes"] = {previous.get(k, k): v for k, v in record["attributes"].items()}
        assert "cli.command" in record["attributes"]
        old_lines.append(json.dumps(record))
    history.write_text("\n".join(old_lines) + "\n", encoding="utf-8")
    assert run_app(DEPLOYCTL, ["deploy", "--stage", "dev"], env).returncode == 0

    result = _admin(env, "--app", "deployctl", "report")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("deployctl: 3 command(s) recorded on this machine, ")
    (header,) = [line for line in lines if line.startswith("command")]
    rows = {line[:22].strip(): line[22:].split() for line in lines[lines.index(header) + 1 :]}
    assert rows["deploy"][:2] == ["2", "0"]  # one old line, one new: the same command
    assert rows["stage new"][:2] == ["1", "0"]
