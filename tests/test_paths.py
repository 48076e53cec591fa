"""Our copy of platformdirs' rule (kept off the hot path) agrees with platformdirs."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from otel_cli_telemetry.paths import Paths, user_state_dir


@pytest.mark.parametrize("xdg", [None, "", "  ", "/custom/state"])
def test_state_dir_matches_platformdirs(
    xdg: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_STATE_HOME", xdg)
    assert user_state_dir("deployctl") == platformdirs.user_state_dir("deployctl", appauthor=False)


def test_resolving_paths_creates_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    paths = Paths.for_app("deployctl")
    assert paths.spool_dir.startswith(str(tmp_path / "state" / "deployctl"))
    assert not (tmp_path / "state").exists()
