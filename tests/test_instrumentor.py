"""``CliTelemetryInstrumentor``: ``opentelemetry-instrument someone-elses-cli ...`` with no code.

The end-to-end tests run three real CLIs from PyPI, one per framework, from a separate venv
(``.work/instrument-venv``, made by ``examples/instrument/setup-venv.sh`` if missing):
sqlite-utils (click), pycln (typer) and sqlparse's ``sqlformat`` (argparse). Each runs once
directly and once under ``opentelemetry-instrument``: output and exit status must not change,
and one command span must reach the receiver, named after the executable, with the package's
version, the command, option names, exit code, and none of the arguments.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from otel_cli_telemetry import instrumentor as module
from otel_cli_telemetry.instrumentor import CliTelemetryInstrumentor

from otlp_receiver import OtlpHttpReceiver
from seed_support import assert_never_sent, assert_nothing_sent, finish, wait_for_commands
from support import ROOT, exit_status

VENV = ROOT / ".work" / "instrument-venv"
SETUP = ROOT / "examples" / "instrument" / "setup-venv.sh"


# -- in-process ------------------------------------------------------------------------------


def test_registered_as_an_opentelemetry_instrumentor() -> None:
    (entry,) = [
        e
        for e in metadata.entry_points(group="opentelemetry_instrumentor")
        if e.name == "cli_telemetry"
    ]
    assert entry.load() is CliTelemetryInstrumentor
    assert tuple(CliTelemetryInstrumentor().instrumentation_dependencies()) == ()


@pytest.mark.parametrize(
    ("environ", "argv", "orig_argv", "expected"),
    [
        ({"OTEL_SERVICE_NAME": "billing-cli"}, ["/venv/bin/x"], [], "x"),  # names the service
        ({}, ["/venv/bin/sqlite-utils"], [], "sqlite-utils"),
        ({}, ["./tools/gen_docs.py"], [], "gen_docs"),
        ({}, ["C:\\bin\\tool.exe"], [], "tool"),
        ({}, ["-m"], ["python", "-m", "pkg.cli", "run"], "pkg"),
        ({}, ["-c"], ["python", "-c", "print(1)"], module.FALLBACK_APP),
        ({}, [], [], module.FALLBACK_APP),
        ({}, ["/x/..."], [], module.FALLBACK_APP),
    ],
)
def test_app_name(
    environ: dict[str, str], argv: list[str], orig_argv: list[str], expected: str
) -> None:
    assert module.app_name(environ, argv, orig_argv) == expected


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"OTEL_SERVICE_NAME": "billing-cli"}, "billing-cli"),
        ({"OTEL_SERVICE_NAME": " My Tool! "}, "My Tool!"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "a=b,service.name=from%20attrs"}, "from attrs"),
        ({"OTEL_SERVICE_NAME": "wins", "OTEL_RESOURCE_ATTRIBUTES": "service.name=loses"}, "wins"),
        ({}, None),
    ],
)
def test_service_name(environ: dict[str, str], expected: str | None) -> None:
    assert module.service_name(environ) == expected


def test_launched_child_marker() -> None:
    """A child sees its parent's pid; the launched process itself (or its own exec) does not."""
    assert module.is_launched_child({module.LAUNCHED_BY_ENV: "1"})
    assert not module.is_launched_child({module.LAUNCHED_BY_ENV: str(os.getpid())})
    assert not module.is_launched_child({})


def test_never_instruments_its_own_processes() -> None:
    drainer = ["python", "-m", "otel_cli_telemetry.delivery.drainer", "--app", "x"]
    assert module.is_own_process(["-m"], drainer)
    assert module.is_own_process(["/venv/bin/otel-cli-telemetry"], ["python", "x"])
    assert not module.is_own_process(["/venv/bin/sqlite-utils"], ["python", "sqlite-utils"])


@pytest.mark.parametrize(
    ("environ", "deny", "expected"),
    [
        ({}, False, (True, module.DECIDED_BY)),
        ({"DO_NOT_TRACK": "1"}, False, (False, "DO_NOT_TRACK is set")),
        ({"OTEL_SDK_DISABLED": "true"}, False, (False, "OTEL_SDK_DISABLED=true")),
        ({}, True, (False, "state file: disabled")),
        ({"MY_CLI_TELEMETRY": "0"}, False, (False, "MY_CLI_TELEMETRY=0")),
        ({"MY_CLI_TELEMETRY": "1", "DO_NOT_TRACK": "1"}, True, (True, "MY_CLI_TELEMETRY=1")),
    ],
)
def test_decide(
    environ: dict[str, str], deny: bool, expected: tuple[bool, str], tmp_path: Path
) -> None:
    if deny:
        (tmp_path / "state.json").write_text('{"consent": "denied", "consent_source": "command"}')
    assert module.decide(environ, "my-cli", str(tmp_path)) == expected


@pytest.fixture
def instrumentor() -> Iterator[CliTelemetryInstrumentor]:
    """The (singleton) instrumentor, uninstrumented again after the test."""
    instance = CliTelemetryInstrumentor()
    try:
        yield instance
    finally:
        if instance.is_instrumented_by_opentelemetry:
            instance.uninstrument()


def test_instrument_and_uninstrument_in_process(
    instrumentor: CliTelemetryInstrumentor, tmp_path: Path
) -> None:
    import click

    from otel_cli_telemetry.capture import patching, process, session

    original_hook = sys.excepthook
    instrumentor.instrument(app="someone-elses", state_dir=str(tmp_path))
    settings = session.settings
    assert settings is not None
    assert settings.enabled
    assert settings.decided_by == module.DECIDED_BY
    assert not settings.show_notice
    assert not settings.options.inject_command
    assert patching.is_ours(vars(click.core.Command)["main"])
    assert sys.excepthook is process._excepthook

    assert os.environ[module.LAUNCHED_BY_ENV] == str(os.getpid())  # for child processes

    instrumentor.uninstrument()
    assert module.LAUNCHED_BY_ENV not in os.environ
    assert not patching.is_ours(vars(click.core.Command)["main"])
    assert sys.excepthook is original_hook
    assert session.settings is None
    assert session.active is None


def test_an_app_that_called_init_keeps_its_settings(
    instrumentor: CliTelemetryInstrumentor, tmp_path: Path
) -> None:
    import otel_cli_telemetry as telemetry
    from otel_cli_telemetry.capture import session

    telemetry.init(app="own", enabled=False, state_dir=str(tmp_path))
    before = session.settings
    instrumentor.instrument(app="other", state_dir=str(tmp_path))
    assert session.settings is before


# -- real CLIs from PyPI under opentelemetry-instrument ---------------------------------------


@pytest.fixture(scope="session")
def venv_bin() -> Path:
    """The instrument venv's bin dir, created by examples/instrument/setup-venv.sh if needed."""
    if sys.platform == "win32":
        pytest.skip("the instrument venv is set up by a POSIX shell script")
    result = subprocess.run(
        ["bash", str(SETUP)], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"setup-venv.sh failed:\n{result.stdout}\n{result.stderr}")
    return VENV / "bin"


def _env(cli_env: dict[str, str], bin_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in cli_env.items() if k != "PYTHONPATH"}  # the venv's own install
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    # No opentelemetry-distro is installed, so the launcher builds no SDK pipeline. (The
    # OTEL_*_EXPORTER variables are honoured: `none` would stop this SDK's sending too.)
    env.update(extra)
    return env


def _run(
    bin_dir: Path, argv: list[str], env: dict[str, str], cwd: Path, *, instrumented: bool = True
) -> subprocess.CompletedProcess[bytes]:
    prefix = [str(bin_dir / "opentelemetry-instrument")] if instrumented else []
    return subprocess.run(
        [*prefix, *argv], env=env, cwd=cwd, capture_output=True, timeout=120, check=False
    )


@dataclass(frozen=True)
class Case:
    framework: str
    app: str
    version: str
    args: tuple[str, ...]
    command: str
    flags: tuple[str, ...]
    code: int
    secrets: tuple[str, ...]


CASES = [
    Case(
        "click",
        "sqlite-utils",
        "4.2.1",
        ("create-table", "payroll.db", "salaries_tbl", "id", "integer", "--pk", "id"),
        "create-table",
        ("--pk",),
        0,
        ("payroll", "salaries_tbl"),
    ),
    Case(
        "typer",
        "pycln",
        "2.6.0",
        ("--check", "--all", "secret_module.py"),
        "pycln",
        ("--all", "--check"),
        1,  # pycln --check: 1 when it would change a file
        ("secret_module", "payroll_token"),
    ),
    Case(
        "argparse",
        "sqlformat",
        "0.6.1",
        ("-r", "-k", "upper", "query.sql"),
        "sqlformat",
        ("--keywords", "--reindent"),
        0,
        ("query.sql", "secret_salary_col", "payroll_2026"),
    ),
]


def _workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "secret_module.py").write_text("import os\npayroll_token = 1\nprint(payroll_token)\n")
    (work / "query.sql").write_text("select secret_salary_col from payroll_2026 where a=1\n")
    return work


@pytest.mark.parametrize("case", CASES, ids=[c.framework for c in CASES])
def test_someone_elses_cli_with_zero_code_change(
    case: Case, venv_bin: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    work = _workdir(tmp_path)
    baseline_dir = tmp_path / "baseline"
    baseline_dir.mkdir()
    for name in ("secret_module.py", "query.sql"):
        (baseline_dir / name).write_bytes((work / name).read_bytes())
    baseline = _run(
        venv_bin, [case.app, *case.args], _env(cli_env, venv_bin), baseline_dir, instrumented=False
    )
    with OtlpHttpReceiver() as receiver:
        env = _env(cli_env, venv_bin, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
        result = _run(venv_bin, [case.app, *case.args], env, work)
        assert (result.stdout, result.stderr, exit_status(result.returncode)) == (
            baseline.stdout,
            baseline.stderr,
            case.code,
        )
        assert exit_status(baseline.returncode) == case.code
        (span,) = wait_for_commands(receiver, 1)
        finish(env, case.app)
        spans = receiver.spans()
    assert [s["name"] for s in spans] == [span["name"]]  # one span: the drainer is not recorded
    attributes, resource = span["attributes"], span["resource"]
    assert resource["service.name"] == case.app
    assert resource["service.version"] == case.version
    assert attributes["process.executable.name"] == case.app
    assert attributes["cli_telemetry.command"] == case.command
    assert sorted(attributes.get("cli_telemetry.flags", [])) == sorted(case.flags)
    assert attributes["process.exit.code"] == case.code
    assert attributes.get("error.type") == ("exit" if case.code else None)
    assert_never_sent(receiver, *case.secrets, str(tmp_path))


def test_no_telemetry_subcommand_is_injected(
    venv_bin: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """sqlite-utils' root is a default group: ``telemetry status`` stays its own business."""
    env = _env(cli_env, venv_bin, SQLITE_UTILS_TELEMETRY="0")
    for argv in (["sqlite-utils", "--help"], ["sqlite-utils", "telemetry", "status"]):
        baseline = _run(venv_bin, argv, env, tmp_path, instrumented=False)
        result = _run(venv_bin, argv, env, tmp_path)
        assert (result.stdout, result.stderr, result.returncode) == (
            baseline.stdout,
            baseline.stderr,
            baseline.returncode,
        )
        assert b"telemetry" not in result.stdout


def test_service_name_and_version_from_otel_variables(
    venv_bin: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    work = _workdir(tmp_path)
    with OtlpHttpReceiver() as receiver:
        env = _env(
            cli_env,
            venv_bin,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_SERVICE_NAME="sql formatter",
            OTEL_RESOURCE_ATTRIBUTES="service.version=7.7.7,team=secret-team",
        )
        assert _run(venv_bin, ["sqlformat", "query.sql"], env, work).returncode == 0
        (span,) = wait_for_commands(receiver, 1)
        finish(env, "sqlformat")
    # OTEL_SERVICE_NAME names the service; the program keeps its name (span, executable).
    assert span["resource"]["service.name"] == "sql formatter"
    assert span["resource"]["service.version"] == "7.7.7"
    assert span["name"] == "sqlformat"
    assert span["attributes"]["process.executable.name"] == "sqlformat"
    assert_never_sent(receiver, "secret-team")


@pytest.mark.parametrize(
    "switch",
    [
        {"DO_NOT_TRACK": "1"},
        {"OTEL_SDK_DISABLED": "true"},
        {"SQLFORMAT_TELEMETRY": "0"},
        {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "cli_telemetry"},
        {},  # with `otel-cli-telemetry --app sqlformat disable` run first
    ],
    ids=["do-not-track", "otel-sdk-disabled", "app-switch", "disabled-instrumentation", "state"],
)
def test_explicit_no_wins_over_the_launcher(
    switch: dict[str, str], venv_bin: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    work = _workdir(tmp_path)
    with OtlpHttpReceiver() as receiver:
        env = _env(cli_env, venv_bin, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, **switch)
        if not switch:
            disable = [str(venv_bin / "otel-cli-telemetry"), "--app", "sqlformat", "disable"]
            done = subprocess.run(disable, env=env, capture_output=True, check=False)
            assert done.returncode == 0, done.stderr
        result = _run(venv_bin, ["sqlformat", "query.sql"], env, work)
        assert result.returncode == 0
        assert result.stderr == b""
        assert_nothing_sent(receiver, env, "sqlformat")
