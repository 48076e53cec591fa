"""Every exit path, for click, typer and argparse, as real processes.

Each scenario runs twice, without telemetry and with it (delivering to a real OTLP/HTTP
receiver through the detached drainer): output and exit status must be identical byte for
byte, and the span that arrives must carry the exit code, error.type, command and option
names the scenario implies, and nothing of the arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from otlp_receiver import OtlpHttpReceiver
from support import exit_status, run_app, wait_for_drainer

APPS = {
    "click": ("click_app.py", "clickapp"),
    "typer": ("typer_app.py", "typerapp"),
    "argparse": ("argparse_app.py", "argparseapp"),
}


@dataclass(frozen=True)
class Scenario:
    id: str
    args: tuple[str, ...]
    code: dict[str, int] | int
    error_type: str | None
    command: str | None  # None: the app's root
    flags: tuple[str, ...] = ()
    phase: bool = True
    frameworks: tuple[str, ...] = ("click", "typer", "argparse")

    def expected_code(self, framework: str) -> int:
        return self.code[framework] if isinstance(self.code, dict) else self.code


SECRET = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
SCENARIOS = [
    Scenario(
        "ok", ("deploy", "--force", "--token", SECRET), 0, None, "deploy", ("--force", "--token")
    ),
    Scenario("short-flag", ("deploy", "-f"), 0, None, "deploy", ("--force",)),
    Scenario("sys-exit", ("deploy", "--do", "exit3"), 3, "exit", "deploy", ("--do",)),
    Scenario(
        "ctx-exit",
        ("deploy", "--do", "ctxexit4"),
        4,
        "exit",
        "deploy",
        ("--do",),
        phase=False,
        frameworks=("click", "typer"),
    ),
    Scenario("exception", ("deploy", "--do", "raise"), 1, "ValueError", "deploy", ("--do",)),
    Scenario(
        "usage-bad-option", ("deploy", "--bogus", SECRET), 2, "usage_error", "deploy", phase=False
    ),
    Scenario("usage-unknown-command", (SECRET,), 2, "usage_error", None, phase=False),
    Scenario(
        "ctrl-c",
        ("deploy", "--do", "interrupt"),
        {"click": 1, "typer": 130, "argparse": 130},
        "interrupted",
        "deploy",
        ("--do",),
    ),
    Scenario("sigterm", ("deploy", "--do", "sigterm"), 143, "terminated", "deploy", ("--do",)),
    Scenario(
        "nested",
        ("--verbose", "stage", "new", SECRET),
        0,
        None,
        "stage new",
        ("--verbose",),
        phase=False,
    ),
]
CASES = [
    (f, s, v)
    for s in SCENARIOS
    for f in ("click", "typer", "argparse")
    if f in s.frameworks
    for v in (("current", "oldest") if f != "argparse" else ("current",))
]


@pytest.mark.parametrize(
    ("framework", "scenario", "versions"), CASES, ids=[f"{f}-{s.id}-{v}" for f, s, v in CASES]
)
def test_exit_path(
    framework: str,
    scenario: Scenario,
    versions: str,
    cli_env: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    """``versions``: "current" is what a fresh install resolves to (click 8.5, typer 0.29 with
    its vendored click); "oldest" is click 8.1 with typer 0.15 (see ``compat_python``)."""
    script, app = APPS[framework]
    python = request.getfixturevalue("compat_python") if versions == "oldest" else None
    baseline = run_app(
        script, list(scenario.args), {**cli_env, "WITH_TELEMETRY": "0"}, python=python
    )
    with OtlpHttpReceiver() as receiver:
        env = {
            **cli_env,
            f"{app.upper()}_TELEMETRY": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        }
        result = run_app(script, list(scenario.args), env, python=python)
        assert (result.stdout, result.stderr, result.returncode) == (
            baseline.stdout,
            baseline.stderr,
            baseline.returncode,
        )
        assert exit_status(result.returncode) == scenario.expected_code(framework)

        spans = receiver.wait_for_spans(2 if scenario.phase else 1, timeout=20)
        wait_for_drainer(env, app)
    command_span = next(s for s in spans if s["name"].startswith(app))
    attributes = command_span["attributes"]
    expected_command = scenario.command or app
    assert command_span["name"] == (f"{app} {scenario.command}" if scenario.command else app)
    assert attributes["cli_telemetry.command"] == expected_command
    assert attributes["process.exit.code"] == scenario.expected_code(framework)
    assert attributes.get("error.type") == scenario.error_type
    assert sorted(attributes.get("cli_telemetry.flags", [])) == sorted(scenario.flags)
    assert attributes["process.executable.name"] == app
    assert command_span["kind_name"] == "INTERNAL"
    assert command_span["status_code"] == (
        "ERROR" if scenario.expected_code(framework) else "UNSET"
    )
    assert command_span["resource"]["service.name"] == app
    assert "undeclared.key" not in attributes
    if scenario.phase:
        (work,) = [s for s in spans if s["name"] == "work"]
        assert work["parent_span_id"] == command_span["span_id"]
        assert work["trace_id"] == command_span["trace_id"]
    for body in receiver.raw_bodies():
        assert SECRET.encode() not in body
        assert b"secret message" not in body


def test_click_standalone_mode_false(cli_env: dict[str, str]) -> None:
    """``main(standalone_mode=False)`` returns ctx.exit's code instead of raising."""
    with OtlpHttpReceiver() as receiver:
        env = {
            **cli_env,
            "CLICKAPP_TELEMETRY": "1",
            "STANDALONE": "0",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        }
        result = run_app("click_app.py", ["deploy", "--do", "ctxexit5"], env)
        assert result.returncode == 5
        (span,) = receiver.wait_for_spans(1)
        wait_for_drainer(env, "clickapp")
    assert span["attributes"]["process.exit.code"] == 5
    assert span["attributes"]["error.type"] == "exit"


def test_click_chained_commands(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = {
            **cli_env,
            "CLICKAPP_TELEMETRY": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        }
        result = run_app("click_app.py", ["pipeline", "build", "upload"], env)
        assert result.returncode == 0, result.stderr
        (span,) = receiver.wait_for_spans(1)
        wait_for_drainer(env, "clickapp")
    assert span["attributes"]["cli_telemetry.command"] == "pipeline build+upload"


def test_argparse_alias_and_parse_known_args(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = {
            **cli_env,
            "ARGPARSEAPP_TELEMETRY": "1",
            "KNOWN": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        }
        result = run_app("argparse_app.py", ["d", "--force", "--extra-unknown", "x"], env)
        assert result.returncode == 0, result.stderr
        spans = receiver.wait_for_spans(2)
        wait_for_drainer(env, "argparseapp")
    span = next(s for s in spans if s["name"].startswith("argparseapp"))
    assert span["attributes"]["cli_telemetry.command"] == "deploy"
    assert span["attributes"]["cli_telemetry.flags"] == ["--force"]
