"""The ``cli_telemetry`` fixture that CLI authors use, and symmetric (un)instrumentation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import click
import pytest
import typer
from click.testing import CliRunner
from typer.testing import CliRunner as TyperRunner

import otel_cli_telemetry as telemetry
from otel_cli_telemetry.capture.integrations import registry
from otel_cli_telemetry.testing import CapturedTelemetry


def _init(tmp_path: Path, **kwargs: object) -> None:
    telemetry.init(
        app="tool",
        version="2.0",
        state_dir=str(tmp_path),
        enabled=True,
        fields={"tool.items": "items handled"},
        **kwargs,
    )  # type: ignore[arg-type]


@click.group()
def tool() -> None:
    """A tool."""


@tool.command()
@click.option("--count", type=int, default=1)
@click.option("--secret", default="")
def run(count: int, secret: str) -> None:
    with telemetry.phase("compute"):
        telemetry.set_attributes({"tool.items": count, "not.declared": 1})
        telemetry.counter("tool.processed", unit="{item}").add(count, {"tool.items": count})
    click.echo(f"ran {count}")


def test_click_runner_records_one_command_each(
    cli_telemetry: CapturedTelemetry, tmp_path: Path
) -> None:
    _init(tmp_path)
    runner = CliRunner()
    assert runner.invoke(tool, ["run", "--count", "3", "--secret", "hunter2"]).exit_code == 0
    assert runner.invoke(tool, ["run", "--nope"]).exit_code == 2
    assert cli_telemetry.commands == ["run", "run"]
    ok, usage = cli_telemetry.records
    assert ok["attributes"]["tool.items"] == 3
    assert "not.declared" not in ok["attributes"]
    assert ok["attributes"]["cli_telemetry.flags"] == ["--count", "--secret"]
    assert [p["name"] for p in ok["phases"]] == ["compute"]
    assert cli_telemetry.metric_points("tool.processed") == [
        {"value": 3, "attributes": {"tool.items": 3}}
    ]
    assert "hunter2" not in repr(cli_telemetry.records)
    assert usage["attributes"]["error.type"] == "usage_error"
    assert usage["attributes"]["process.exit.code"] == 2


def test_typer_runner(cli_telemetry: CapturedTelemetry, tmp_path: Path) -> None:
    _init(tmp_path)
    app = typer.Typer()

    @app.command()
    def hello(name: str, loud: bool = False) -> None:
        typer.echo(f"hello {name}")

    @app.command()
    def fail() -> None:
        raise RuntimeError("boom")

    runner = TyperRunner()
    assert runner.invoke(app, ["hello", "ann", "--loud"]).exit_code == 0
    assert runner.invoke(app, ["fail"]).exit_code == 1
    hello_record, fail_record = cli_telemetry.records
    assert hello_record["attributes"]["cli_telemetry.command"] == "hello"
    assert hello_record["attributes"]["cli_telemetry.flags"] == ["--loud"]
    assert "ann" not in repr(hello_record)
    assert fail_record["attributes"]["error.type"] == "RuntimeError"


def test_generic_command_boundary(cli_telemetry: CapturedTelemetry, tmp_path: Path) -> None:
    _init(tmp_path)

    @telemetry.command("sync all")
    def sync() -> None:
        with telemetry.phase("fetch"):
            pass
        raise SystemExit(4)

    with pytest.raises(SystemExit):
        sync()
    record = cli_telemetry.only()
    assert record["name"] == "tool sync all"
    assert record["attributes"]["process.exit.code"] == 4
    assert record["attributes"]["error.type"] == "exit"
    assert record["phases"][0]["parent_span_id"] == record["span_id"]


def test_phase_error_type_and_nesting(cli_telemetry: CapturedTelemetry, tmp_path: Path) -> None:
    _init(tmp_path)
    with telemetry.command("build"):
        with telemetry.phase("outer"), telemetry.phase("inner"):
            pass
        with pytest.raises(KeyError), telemetry.phase("failing"):
            raise KeyError("private")
    outer, inner, failing = cli_telemetry.only()["phases"]
    assert inner["parent_span_id"] == outer["span_id"]
    assert failing["attributes"] == {"error.type": "KeyError"}
    assert failing["status"] == "ERROR"


def test_subprocess_env_carries_the_trace(cli_telemetry: CapturedTelemetry, tmp_path: Path) -> None:
    _init(tmp_path)
    with telemetry.command("parent"), telemetry.phase("spawn"):
        env = telemetry.subprocess_env({})
    record = cli_telemetry.only()
    (phase,) = record["phases"]
    assert env == {"TRACEPARENT": f"00-{record['trace_id']}-{phase['span_id']}-01"}


def test_init_twice_keeps_the_first(tmp_path: Path) -> None:
    _init(tmp_path)
    telemetry.init(app="other", state_dir=str(tmp_path))
    assert telemetry.status()["decided_by"] == "init(enabled=...) argument"


@pytest.mark.parametrize("framework", ["click", "argparse"])
def test_uninstrument_leaves_no_patch(
    framework: str, cli_telemetry: CapturedTelemetry, tmp_path: Path
) -> None:
    _init(tmp_path, instrument=(framework,))
    integration = registry.integration(framework)
    integration.uninstrument()
    if framework == "click":
        assert CliRunner().invoke(tool, ["run"]).exit_code == 0
        assert not hasattr(click.core.Command.main, "__wrapped__")
    else:
        parser = argparse.ArgumentParser()
        parser.add_subparsers(dest="cmd").add_parser("go")
        parser.parse_args(["go"])
        assert not hasattr(argparse.ArgumentParser.parse_known_args, "__wrapped__")
        assert cli_telemetry.records == []
    assert cli_telemetry.records == []
    integration.instrument()
    if framework == "click":
        CliRunner().invoke(tool, ["run"])
        assert cli_telemetry.commands == ["run"]


def test_telemetry_off_records_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    telemetry.init(app="tool", state_dir=str(tmp_path))
    assert CliRunner().invoke(tool, ["run"]).exit_code == 0
    assert telemetry.status()["enabled"] is False
    assert list(tmp_path.iterdir()) == []


def test_import_is_silent_and_light() -> None:
    """Importing the package loads no OpenTelemetry SDK, exporter, grpc or protobuf."""
    import subprocess

    code = (
        "import sys, otel_cli_telemetry; "
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'grpc', "
        "'google.protobuf', 'requests', 'urllib3', 'platformdirs', 'logging'))))"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
    assert out.stderr == ""


def test_app_init_replaces_the_instrumentors_settings(
    cli_telemetry: CapturedTelemetry, tmp_path: Path
) -> None:
    """Under ``opentelemetry-instrument`` the app's own init() still declares its fields."""
    from otel_cli_telemetry.capture import session

    telemetry.init(app="launcher-guess", state_dir=str(tmp_path), enabled=True)
    session.settings_source = "instrumentor"
    telemetry.init(
        app="tool", version="2.0", state_dir=str(tmp_path), fields={"tool.items": "items handled"}
    )
    assert CliRunner().invoke(tool, ["run", "--count", "2"]).exit_code == 0
    record = cli_telemetry.only()
    assert record["resource"]["service.name"] == "tool"
    assert record["attributes"]["tool.items"] == 2


def test_boolean_flag_names_as_used(cli_telemetry: CapturedTelemetry, tmp_path: Path) -> None:
    _init(tmp_path)

    @click.command()
    @click.option("--cache/--no-cache", default=True)
    def build(cache: bool) -> None:
        pass

    CliRunner().invoke(build, ["--no-cache"])
    CliRunner().invoke(build, ["--cache"])
    parser = argparse.ArgumentParser()
    parser.add_argument("--analytics", action=argparse.BooleanOptionalAction)
    parser.add_argument("-f", "--force", action="store_true")
    with telemetry.command("argparse"):
        parser.parse_args(["--no-analytics", "-f"])
    flags = [r["attributes"]["cli_telemetry.flags"] for r in cli_telemetry.records]
    assert flags == [["--no-cache"], ["--cache"], ["--force", "--no-analytics"]]
