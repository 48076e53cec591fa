"""Shared fixtures: isolated environments for real subprocesses, and the SDK's error guard."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import ROOT, SRC

#: Variables a developer's or CI's shell may set that would change what the SDK decides.
_LEAKY_PREFIXES = (
    "OTEL_",
    "CI",
    "GITHUB_",
    "GITLAB_",
    "CIRCLE",
    "TRAVIS",
    "BUILDKITE",
    "JENKINS",
    "TEAMCITY",
    "TF_BUILD",
    "BITBUCKET",
    "APPVEYOR",
    "CODEBUILD",
    "DRONE",
    "CLAUDECODE",
    "CURSOR",
    "GEMINI",
    "CODEX",
    "DO_NOT_TRACK",
    "TRACEPARENT",
)


#: Detached drainers stay this long after the spool went empty (the default, 20 s, would
#: make every test that waits for its drainer wait that long). tests/test_drainer_burst.py
#: sets its own values to test lingering itself.
DRAINER_LINGER_ENV = "OTEL_CLI_TELEMETRY_DRAINER_LINGER"
TEST_DRAINER_LINGER = "0.3"


@pytest.fixture(autouse=True)
def _sdk_errors_fail_tests(telemetry_internal_errors_fail: list[str]) -> Iterator[None]:
    """Errors the SDK swallows in this process fail the test (see testing.py)."""
    yield


@pytest.fixture(autouse=True)
def _clean_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each in-process test starts with no session, no hooks, no patches, no leaky env."""
    for name in list(os.environ):
        if name.startswith(_LEAKY_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(DRAINER_LINGER_ENV, TEST_DRAINER_LINGER)
    yield
    from otel_cli_telemetry.capture import process, session
    from otel_cli_telemetry.capture.integrations import registry

    registry.uninstrument_all()
    process.uninstall()
    session.reset_for_tests()
    session.sink = None


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment for a CLI subprocess: own HOME and XDG dirs, no CI, no OTEL_*."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PYTHONPATH": str(SRC),
        "LANG": "C.UTF-8",
        DRAINER_LINGER_ENV: TEST_DRAINER_LINGER,
    }


COMPAT_VENV = ROOT / ".work" / "compat-venv"
#: The oldest supported framework versions: click 8.1 (``BaseCommand.main``) and a typer
#: from before 0.26 (no vendored click). ``make test`` builds this venv; so does this fixture.
COMPAT_REQUIREMENTS = ("click==8.1.8", "typer==0.15.4")


@pytest.fixture(scope="session")
def compat_python() -> str:
    """The interpreter of a venv with the oldest supported click and typer."""
    python = COMPAT_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(COMPAT_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *COMPAT_REQUIREMENTS, "-e", str(ROOT)],
            check=True,
        )
    return str(python)
