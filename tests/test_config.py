"""Configuration resolves in one order; ``decided_by`` names the source that won."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_cli_telemetry.config import InitOptions, resolve
from otel_cli_telemetry.gate.state import update_state
from otel_cli_telemetry.paths import Paths


def _settings(tmp_path: Path, env: dict[str, str], *, interactive: bool = False, **options: object):
    opts = InitOptions(app="deployctl", state_dir=str(tmp_path), **options)  # type: ignore[arg-type]
    return resolve(opts, env, interactive=interactive)


def test_default_notice_mode_shows_notice_and_sends_nothing(tmp_path: Path) -> None:
    s = _settings(tmp_path, {})
    assert (s.enabled, s.show_notice) == (False, True)
    assert "notice" in s.decided_by


def test_notice_already_shown_means_on(tmp_path: Path) -> None:
    first = _settings(tmp_path, {})
    update_state(Paths(str(tmp_path)), notice_schema=first.schema.version)
    s = _settings(tmp_path, {})
    assert (s.enabled, s.show_notice) == (True, False)


def test_changed_fields_show_the_notice_again(tmp_path: Path) -> None:
    first = _settings(tmp_path, {})
    update_state(Paths(str(tmp_path)), notice_schema=first.schema.version)
    s = _settings(tmp_path, {}, fields={"deploy.stage": "the stage"})
    assert s.show_notice
    assert not s.enabled


@pytest.mark.parametrize(
    ("env", "options", "enabled", "source"),
    [
        ({"DEPLOYCTL_TELEMETRY": "1", "DO_NOT_TRACK": "1"}, {}, True, "DEPLOYCTL_TELEMETRY=1"),
        ({"DEPLOYCTL_TELEMETRY": "0"}, {"enabled": True}, True, "init(enabled=...)"),
        ({"DO_NOT_TRACK": "1"}, {}, False, "DO_NOT_TRACK"),
        ({"DO_NOT_TRACK": "true"}, {}, False, "DO_NOT_TRACK"),
        ({"OTEL_SDK_DISABLED": "true"}, {}, False, "OTEL_SDK_DISABLED"),
        ({"MY_NO_EVENTS": "yes"}, {"opt_out_env": ("MY_NO_EVENTS",)}, False, "MY_NO_EVENTS"),
        ({"GITHUB_ACTIONS": "true"}, {}, True, "CI"),
        ({"GITHUB_ACTIONS": "true"}, {"consent": "ask"}, False, "never asked in CI"),
    ],
)
def test_precedence(
    tmp_path: Path, env: dict[str, str], options: dict[str, object], enabled: bool, source: str
) -> None:
    s = _settings(tmp_path, env, **options)
    assert s.enabled is enabled
    assert source in s.decided_by
    assert not s.show_notice


def test_state_file_disable_beats_defaults_but_not_env(tmp_path: Path) -> None:
    update_state(Paths(str(tmp_path)), consent="denied", consent_source="command")
    assert _settings(tmp_path, {}).enabled is False
    assert _settings(tmp_path, {"DEPLOYCTL_TELEMETRY": "1"}).enabled is True


def test_ask_needs_a_terminal(tmp_path: Path) -> None:
    assert _settings(tmp_path, {}, consent="ask").ask is False
    assert _settings(tmp_path, {}, consent="ask", interactive=True).ask is True


@pytest.mark.parametrize(
    "bad",
    [
        {"app": ""},
        {"app": "has space"},
        {"consent": "maybe"},
        {"endpoint": "ftp://x"},
        {"fields": {"Bad Key": "x"}},
        {"fields": {"cli_telemetry.command": "built-in"}},
        {"fields": {"ok.key": ""}},
        {"ask_share": 2},
        {"ci_budget_s": -1},
        {"opt_out_env": "SINGLE_STRING"},
    ],
)
def test_bad_init_arguments_fail_loudly(bad: dict[str, object]) -> None:
    options = {"app": "deployctl", **bad}
    with pytest.raises((ValueError, TypeError), match=r"init\("):
        InitOptions(**options)  # type: ignore[arg-type]
