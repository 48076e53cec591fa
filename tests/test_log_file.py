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
from typing import Any

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


def _debug_record(stderr: bytes) -> dict[str, Any]:
    """The one debug record among the app's own stderr lines."""
    (line,) = [x for x in stderr.decode().splitlines() if "telemetry debug, not sent] " in x]
    record: dict[str, Any] = json.loads(line.partition("] ")[2])
    return record


def _commands(log: Path) -> list[str]:
    return [
        json.loads(line)["attributes"]["cli_telemetry.command"]
        for line in log.read_text().splitlines()
    ]


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


def test_why_not_appendable_agrees_with_append_line(tmp_path: Path) -> None:
    """Each answer is checked against a real append: None exactly when it works."""
    import os

    from otel_cli_telemetry._files import append_line, why_not_appendable

    a_file = tmp_path / "plain"
    a_file.write_text("")
    read_only_dir = tmp_path / "ro"
    read_only_dir.mkdir()
    read_only_file = tmp_path / "ro.jsonl"
    read_only_file.write_text("")
    read_only_file.chmod(0o400)
    read_only_dir.chmod(0o500)
    cases = {
        str(tmp_path / "new.jsonl"): None,
        str(tmp_path / "deep" / "er" / "new.jsonl"): None,
        str(a_file): None,
        str(tmp_path): "it is a directory",
        str(a_file / "below.jsonl"): f"{a_file} is not a directory",
        str(a_file / "x" / "below.jsonl"): f"{a_file} is not a directory",
    }
    if os.geteuid() != 0:  # root may write anywhere: permissions mean nothing to it
        cases[str(read_only_file)] = "permission denied"
        cases[str(read_only_dir / "x.jsonl")] = f"permission denied in {read_only_dir}"
    try:
        for path, reason in cases.items():
            assert why_not_appendable(path) == reason, path
            try:
                append_line(path, b"{}")
                appended = True
            except OSError:
                appended = False
            assert appended is (reason is None), path
    finally:
        read_only_dir.chmod(0o700)


def test_debug_record_on_a_fresh_install_says_the_id_is_not_created_yet(
    cli_env: dict[str, str],
) -> None:
    """A debug run on a fresh machine creates no file, and does not show an empty id."""
    from otel_cli_telemetry.pipeline import NO_INSTALLATION_ID

    env = {**cli_env, "CLICKAPP_TELEMETRY": "0", "CLICKAPP_TELEMETRY_DEBUG": "1"}
    result = subprocess.run(
        [sys.executable, str(APPS / "click_app.py"), "deploy"],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    record = _debug_record(result.stderr)
    assert record["resource"]["service.instance.id"] == NO_INSTALLATION_ID
    assert not Path(cli_env["XDG_STATE_HOME"]).exists()  # nothing written

    # Once a recording run made the id, debug records show it.
    on = {**cli_env, "CLICKAPP_TELEMETRY": "1"}
    assert (
        subprocess.run(
            [sys.executable, str(APPS / "click_app.py"), "deploy"], env=on, timeout=30, check=False
        ).returncode
        == 0
    )
    made = (
        (Path(cli_env["XDG_STATE_HOME"]) / "clickapp" / "otel-cli-telemetry" / "installation_id")
        .read_text()
        .strip()
    )
    result = subprocess.run(
        [sys.executable, str(APPS / "click_app.py"), "deploy"],
        env={**on, "CLICKAPP_TELEMETRY_DEBUG": "1"},
        capture_output=True,
        timeout=30,
        check=False,
    )
    record = _debug_record(result.stderr)
    assert record["resource"]["service.instance.id"] == made
