"""``<APP>_TELEMETRY_LOG`` with the forms the docs show: a bare or relative file name.

A bare name (``records.jsonl``) once wrote nothing: ``os.makedirs("")`` raised inside the
append and the error was swallowed. The name is relative to the directory the command was
run in, even when the program changes directory before the record is written at exit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from support import APPS


def _run(script: Path | str, args: list[str], env: dict[str, str], cwd: Path) -> int:
    return subprocess.run(
        [sys.executable, str(script), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        timeout=30,
        check=False,
    ).returncode


def _commands(log: Path) -> list[str]:
    return [json.loads(line)["attributes"]["cli.command"] for line in log.read_text().splitlines()]


def test_bare_file_name_is_written_in_the_working_directory(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = {**cli_env, "CLICKAPP_TELEMETRY": "0", "CLICKAPP_TELEMETRY_LOG": "records.jsonl"}
    assert _run(APPS / "click_app.py", ["deploy"], env, work) == 0
    assert _commands(work / "records.jsonl") == ["deploy"]


def test_relative_path_with_missing_folders_is_created(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "CLICKAPP_TELEMETRY": "1", "CLICKAPP_TELEMETRY_LOG": "logs/day/r.jsonl"}
    assert _run(APPS / "click_app.py", ["stage", "new", "x"], env, tmp_path) == 0
    assert _commands(tmp_path / "logs" / "day" / "r.jsonl") == ["stage new"]


def test_relative_name_stays_where_the_command_was_run_after_chdir(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = tmp_path / "mover.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os
            import otel_cli_telemetry as telemetry

            telemetry.init(app="mover", instrument=())
            with telemetry.command("move"):
                os.chdir({str(elsewhere)!r})
            """
        )
    )
    env = {**cli_env, "MOVER_TELEMETRY": "0", "MOVER_TELEMETRY_LOG": "moves.jsonl"}
    assert _run(script, [], env, tmp_path) == 0
    assert _commands(tmp_path / "moves.jsonl") == ["move"]
    assert not (elsewhere / "moves.jsonl").exists()
