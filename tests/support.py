"""Helpers shared by the test modules (``from support import ...``).

Kept out of ``conftest.py`` on purpose: ``tests/collector/`` has a conftest of its own, and
two modules named ``conftest`` cannot both be imported by name.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SRC = ROOT  # the directory that holds the package (it sits at the top level)
APPS = TESTS / "apps"


def state_dir(env: dict[str, str], app: str) -> Path:
    """Where the SDK keeps an app's files under ``env``."""
    return Path(env["XDG_STATE_HOME"]) / app / "otel-cli-telemetry"


def run_app(
    script: str | Path,
    args: list[str],
    env: dict[str, str],
    *,
    timeout: float = 30,
    stdin: str | None = None,
    python: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a test app (a path under tests/apps or any script) as a real process."""
    path = Path(script)
    if not path.is_absolute():
        path = APPS / path
    return subprocess.run(
        [python or sys.executable, str(path), *args],
        env=env,
        capture_output=True,
        timeout=timeout,
        input=stdin.encode() if stdin is not None else None,
        check=False,
    )


def wait_for_drainer(env: dict[str, str], app: str, timeout: float = 20) -> None:
    """Wait until no drainer holds the app's lock (so tmp dirs can be removed)."""
    from otel_cli_telemetry.delivery.lock import held_by_someone

    lock = state_dir(env, app) / "drainer.lock"
    deadline = time.time() + timeout
    while time.time() < deadline and held_by_someone(str(lock)):
        time.sleep(0.05)


def exit_status(returncode: int) -> int:
    """The exit status a shell reports: 128 + signal for a process killed by one."""
    return returncode if returncode >= 0 else 128 - returncode
