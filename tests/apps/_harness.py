"""Helpers shared by the consent, privacy and state-file tests (not an app).

They look at a CLI run from the outside, the way a user or an auditor would: files in the
app's state dir, processes in ``/proc``, and a real terminal (a pty) for the prompt.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

APPS = Path(__file__).resolve().parent
DRAINER_MODULE = b"otel_cli_telemetry.delivery.drainer"
PROMPT = "[y/N]"


def app_state_dir(env: dict[str, str], app: str) -> Path:
    """Where the SDK keeps ``app``'s files under ``env`` (see conftest.state_dir)."""
    return Path(env["XDG_STATE_HOME"]) / app / "otel-cli-telemetry"


def history(env: dict[str, str], app: str) -> list[dict[str, Any]]:
    """Records in the app's local history (records that consent allowed to send)."""
    path = app_state_dir(env, app) / "records.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def state(env: dict[str, str], app: str) -> dict[str, Any]:
    """The app's state file as JSON ({} when missing)."""
    path = app_state_dir(env, app) / "state.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def files_under(root: Path) -> list[Path]:
    """Every regular file below ``root`` (empty when it does not exist)."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def drainer_pids(state_root: Path | str) -> list[int]:
    """Live drainer processes working on ``state_root`` (read from /proc)."""
    needle = str(state_root).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if DRAINER_MODULE in cmdline and needle in cmdline:
            found.append(int(entry))
    return found


def run_in_pty(
    script: str | Path,
    args: list[str],
    env: dict[str, str],
    *,
    answer: str | None = None,
    timeout: float = 30,
) -> tuple[int, str]:
    """Run an app with stdin, stdout and stderr on a real terminal; (exit code, output).

    When the prompt appears, ``answer`` is typed; with no answer, end-of-input (Ctrl-D) is
    sent so the run cannot hang, and the caller sees the prompt in the output.
    """
    path = Path(script)
    if not path.is_absolute():
        path = APPS / path
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, str(path), *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
        start_new_session=True,
    )
    os.close(slave)
    output = b""
    answered = False
    deadline = time.time() + timeout
    try:
        while True:
            if time.time() > deadline:
                proc.kill()
                raise TimeoutError(f"pty run timed out; output so far: {output!r}")
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every holder of the terminal's other side is gone
                    break
                if not chunk:
                    break
                output += chunk
                if not answered and PROMPT.encode() in output:
                    os.write(master, answer.encode() if answer is not None else b"\x04")
                    answered = True
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.time()))
    finally:
        os.close(master)
    return code, output.decode(errors="replace").replace("\r\n", "\n")
