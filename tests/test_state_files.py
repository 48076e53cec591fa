"""The state files under stress: first runs racing for the installation id, and corrupt,
empty, unreadable and read-only state. The CLI must keep its stdout and exit code in every
case; what telemetry does instead is documented in docs/PRIVACY.md ("State files").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from otel_cli_telemetry.gate.state import _is_uuid4

from apps._harness import APPS, app_state_dir, history, run_in_pty, state
from support import run_app

APP = "clickapp"
SCRIPT = "click_app.py"


def _baseline(cli_env: dict[str, str], args: list[str]) -> subprocess.CompletedProcess[bytes]:
    return run_app(SCRIPT, args, {**cli_env, "WITH_TELEMETRY": "0"})


def _same_output(
    result: subprocess.CompletedProcess[bytes], baseline: subprocess.CompletedProcess[bytes]
) -> None:
    assert (result.stdout, result.returncode) == (baseline.stdout, baseline.returncode)
    assert b"Traceback" not in result.stderr


# --- the installation id: ten first runs at once ---------------------------------------------


def test_ten_first_runs_at_once_agree_on_one_installation_id(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "CONSENTAPP_TELEMETRY": "1", "BARRIER": str(time.time() + 2.0)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(APPS / "consent_app.py"), "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(10)
    ]
    results = [(p.communicate(timeout=60), p.returncode) for p in procs]
    assert all(code == 0 and out == b"ran 1\n" and err == b"" for (out, err), code in results)
    root = app_state_dir(env, "consentapp")
    installation_id = (root / "installation_id").read_text().strip()
    assert _is_uuid4(installation_id)
    records = history(env, "consentapp")
    assert len(records) == 10
    assert {r["resource"]["service.instance.id"] for r in records} == {installation_id}
    assert not [p.name for p in root.iterdir() if p.name.endswith(".tmp")]


RACE = """
import sys, time
from otel_cli_telemetry.gate.state import installation_id
from otel_cli_telemetry.paths import Paths
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
print(installation_id(Paths(sys.argv[1])))
"""


def test_ten_processes_creating_the_id_at_the_same_instant(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "race"
    start = str(time.time() + 1.5)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(root), start],
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(10)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    ids = {out.decode().strip() for out, _ in outputs}
    assert ids == {(root / "installation_id").read_text().strip()}
    assert [p.name for p in root.iterdir()] == ["installation_id"]


# --- corrupt, empty and unreadable files --------------------------------------------------------


def _write(path: Path, content: bytes | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        path.mkdir()  # a directory where a file is expected: unreadable and unwritable
    else:
        path.write_bytes(content)


CORRUPT = {
    "not-json": b"{consent: granted",
    "invalid-utf8": b'{"consent": "\xff\xfe"}',
    "empty": b"",
    "json-array": b"[1, 2]",
    "wrong-types": b'{"consent": 5, "notice_schema": [], "consent_source": null}',
    "binary": bytes(range(256)),
}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_corrupt_state_file_reads_as_no_state(cli_env: dict[str, str], kind: str) -> None:
    """Unusable content: as if there were no state: the notice shows again, the file is
    rewritten, and telemetry works from the next run."""
    baseline = _baseline(cli_env, ["deploy"])
    _write(app_state_dir(cli_env, APP) / "state.json", CORRUPT[kind])
    status = run_app(SCRIPT, ["telemetry", "status"], cli_env)
    assert status.returncode == 0
    assert "state file was unreadable" in status.stdout.decode()
    first = run_app(SCRIPT, ["deploy"], cli_env)
    _same_output(first, baseline)
    assert "collects anonymous usage telemetry" in first.stderr.decode()
    assert state(cli_env, APP)["notice_schema"]  # rewritten, valid JSON
    _same_output(run_app(SCRIPT, ["deploy"], cli_env), baseline)
    assert len(history(cli_env, APP)) == 1


def test_state_file_that_is_a_directory(cli_env: dict[str, str]) -> None:
    """Neither readable nor writable: no notice (it could not be remembered), nothing sent;
    enable/disable report the problem with exit code 1 instead of crashing."""
    baseline = _baseline(cli_env, ["deploy"])
    _write(app_state_dir(cli_env, APP) / "state.json", None)
    for _ in range(2):
        result = run_app(SCRIPT, ["deploy"], cli_env)
        _same_output(result, baseline)
        assert result.stderr == baseline.stderr  # no notice, no error text
    assert history(cli_env, APP) == []
    status = run_app(SCRIPT, ["telemetry", "status"], cli_env).stdout.decode()
    assert "is off" in status
    assert "state dir is not writable" in status or "unreadable" in status
    for args in (["telemetry", "enable"], ["telemetry", "disable"]):
        result = run_app(SCRIPT, args, cli_env)
        assert result.returncode == 1
        assert b"Could not save the telemetry setting" in result.stderr
        assert b"Traceback" not in result.stderr
    admin = _admin(cli_env, "disable")
    assert admin.returncode == 1
    assert b"CLICKAPP_TELEMETRY=0" in admin.stdout
    # The per-run switch still works, without the state file.
    on = {**cli_env, "CLICKAPP_TELEMETRY": "1"}
    _same_output(run_app(SCRIPT, ["deploy"], on), baseline)
    assert len(history(on, APP)) == 1


def _admin(env: dict[str, str], action: str) -> subprocess.CompletedProcess[bytes]:
    """``otel-cli-telemetry --app clickapp ACTION`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "otel_cli_telemetry", "--app", APP, action],
        env=env,
        capture_output=True,
        check=False,
    )


@pytest.mark.parametrize("content", [b"not-a-uuid\n", b"", b"\xff\xfe\n", None])
def test_corrupt_installation_id(cli_env: dict[str, str], content: bytes | None) -> None:
    """A bad id file is replaced by a fresh uuid4; one that cannot be replaced (a directory)
    means records are not kept. The command is unaffected either way."""
    env = {**cli_env, "CLICKAPP_TELEMETRY": "1"}
    baseline = _baseline(cli_env, ["deploy"])
    id_file = app_state_dir(env, APP) / "installation_id"
    _write(id_file, content)
    for _ in range(2):
        _same_output(run_app(SCRIPT, ["deploy"], env), baseline)
    records = history(env, APP)
    if content is None:
        assert records == []
    else:
        installation_id = id_file.read_text().strip()
        assert _is_uuid4(installation_id)
        assert [r["resource"]["service.instance.id"] for r in records] == [installation_id] * 2


@pytest.mark.parametrize("content", [b"{oops", b"", None])
def test_corrupt_schema_file(cli_env: dict[str, str], content: bytes | None) -> None:
    env = {**cli_env, "CLICKAPP_TELEMETRY": "1"}
    baseline = _baseline(cli_env, ["deploy"])
    _write(app_state_dir(env, APP) / "schema.json", content)
    _same_output(run_app(SCRIPT, ["deploy"], env), baseline)
    assert len(history(env, APP)) == 1
    admin = _admin(env, "schema")
    assert admin.returncode == 0
    assert b"cli_telemetry.command" in admin.stdout


def test_state_dir_path_is_a_file(cli_env: dict[str, str]) -> None:
    """Nothing can be created under it: the CLI runs as if telemetry were off."""
    baseline = _baseline(cli_env, ["deploy"])
    blocker = app_state_dir(cli_env, APP)
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a directory")
    for extra in ({}, {"CLICKAPP_TELEMETRY": "1"}):
        result = run_app(SCRIPT, ["deploy"], {**cli_env, **extra})
        _same_output(result, baseline)
        assert result.stderr == baseline.stderr
    assert blocker.read_text() == "not a directory"


# --- read-only state ---------------------------------------------------------------------------


def _readonly_runner(root: Path) -> list[str]:
    """A command prefix that runs the CLI with ``root`` read-only.

    As root, permissions do not stop writes, so the directory is bind-mounted read-only in
    a private mount namespace; otherwise the directory and its files lose their write bits.
    """
    if os.geteuid() != 0:
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        return []
    if (
        shutil.which("unshare") is None
        or subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False).returncode
    ):
        pytest.skip("running as root without mount namespaces: cannot make a read-only dir")
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, str(root)]


def _run_readonly(
    root: Path, args: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[bytes]:
    prefix = _readonly_runner(root)
    return subprocess.run(
        [*prefix, sys.executable, str(APPS / SCRIPT), *args],
        env=env,
        capture_output=True,
        check=False,
        timeout=30,
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_read_only_state_with_consent(cli_env: dict[str, str]) -> None:
    """Enabled, with an installation id, but nothing can be written: the command is
    unaffected, nothing is written, enable/disable report the problem (exit 1)."""
    baseline = _baseline(cli_env, ["deploy"])
    root = app_state_dir(cli_env, APP)
    run_app(SCRIPT, ["telemetry", "enable"], cli_env)
    run_app(SCRIPT, ["deploy"], cli_env)  # creates the id and one history record
    before = _tree(root)
    try:
        result = _run_readonly(root, ["deploy"], cli_env)
        _same_output(result, baseline)
        assert result.stderr == baseline.stderr
        disable = _run_readonly(root, ["telemetry", "disable"], cli_env)
        assert disable.returncode == 1
        assert b"Could not save the telemetry setting" in disable.stderr
        status = _run_readonly(root, ["telemetry", "status"], cli_env)
        assert status.returncode == 0
        assert b"Telemetry for clickapp is on." in status.stdout
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    assert _tree(root) == before


def test_read_only_empty_state_dir_means_no_notice_and_off(cli_env: dict[str, str]) -> None:
    baseline = _baseline(cli_env, ["deploy"])
    root = app_state_dir(cli_env, APP)
    root.mkdir(parents=True)
    try:
        for _ in range(2):
            result = _run_readonly(root, ["deploy"], cli_env)
            _same_output(result, baseline)
            assert (
                result.stderr == baseline.stderr
            )  # a notice that cannot be remembered is not shown
    finally:
        root.chmod(0o700)
    assert list(root.iterdir()) == []


def test_state_file_written_atomically_and_private(cli_env: dict[str, str]) -> None:
    run_app(SCRIPT, ["deploy"], cli_env)
    path = app_state_dir(cli_env, APP) / "state.json"
    assert json.loads(path.read_text())["notice_schema"]
    assert path.stat().st_mode & 0o077 == 0
    assert app_state_dir(cli_env, APP).stat().st_mode & 0o077 == 0


def test_ask_mode_does_not_ask_when_the_answer_cannot_be_saved(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "CONSENT": "ask", "TERM": "dumb"}
    _write(app_state_dir(env, "consentapp") / "state.json", None)
    for _ in range(2):
        code, output = run_in_pty("consent_app.py", ["run"], env, answer="y\n")
        assert (code, "[y/N]" in output, "ran 1" in output) == (0, False, True)
    assert history(env, "consentapp") == []
