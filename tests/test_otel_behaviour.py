"""Behaving like OpenTelemetry (issue 14): exit status, child processes, sampling, variables.

Real processes throughout: scripts and real PyPI CLIs (pyflakes, httpie, pip, from the
instrument venv that ``examples/instrument/setup-venv.sh`` builds) under
``opentelemetry-instrument``, and test apps that call ``init()``. What a process recorded is
read back from its ``<APP>_TELEMETRY_LOG`` file (every record, sent or not), or from a real
OTLP/HTTP receiver where delivery is the point.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from otel_cli_telemetry.capture.record import parse_parent, sample
from otel_cli_telemetry.config import (
    exporter_enabled,
    resolve_endpoint,
    resolve_metrics_temporality,
    resolve_sampler,
    signal_endpoint,
)
from otel_cli_telemetry.config_check import otel_problems

from otlp_receiver import OtlpHttpReceiver
from seed_support import finish, wait_for_commands, wait_for_metric
from support import ROOT, exit_status, run_app

VENV = ROOT / ".work" / "instrument-venv"
SETUP = ROOT / "examples" / "instrument" / "setup-venv.sh"


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


def _launcher_env(
    cli_env: dict[str, str], bin_dir: Path, tmp_path: Path, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in cli_env.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    env.update(extra)
    return env


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _launch(
    bin_dir: Path,
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    *,
    instrumented: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    prefix = [str(bin_dir / "opentelemetry-instrument")] if instrumented else []
    return subprocess.run(
        [*prefix, *argv], env=env, cwd=cwd, capture_output=True, timeout=120, check=False
    )


def _same_run(
    bin_dir: Path, argv: list[str], env: dict[str, str], cwd: Path
) -> tuple[subprocess.CompletedProcess[bytes], subprocess.CompletedProcess[bytes]]:
    """(baseline, instrumented): the launcher changes neither output nor exit status."""
    baseline = _launch(bin_dir, argv, env, cwd, instrumented=False)
    result = _launch(bin_dir, argv, env, cwd)
    assert (result.stdout, result.stderr, result.returncode) == (
        baseline.stdout,
        baseline.stderr,
        baseline.returncode,
    )
    return baseline, result


# -- 1. exit status ----------------------------------------------------------------------------


def test_pyflakes_raise_system_exit_true_is_recorded_as_1(
    venv_bin: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """pyflakes' entry point ends with ``raise SystemExit(warnings > 0)``; no sys.exit call."""
    (tmp_path / "bad.py").write_text("import os\n")
    (tmp_path / "good.py").write_text("print(1)\n")
    log = tmp_path / "log.jsonl"
    env = _launcher_env(cli_env, venv_bin, tmp_path, PYFLAKES_TELEMETRY_LOG=str(log))
    _, bad = _same_run(venv_bin, ["pyflakes", "bad.py"], env, tmp_path)
    _, good = _same_run(venv_bin, ["pyflakes", "good.py"], env, tmp_path)
    assert (bad.returncode, good.returncode) == (1, 0)
    records = _records(log)
    assert [r["attributes"]["process.exit.code"] for r in records] == [1, 0]
    assert [r["status"] for r in records] == ["ERROR", "UNSET"]
    assert records[0]["attributes"]["error.type"] == "exit"
    assert "error.type" not in records[1]["attributes"]


def test_httpie_own_parser_error_is_a_usage_error(
    venv_bin: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """httpie's parser overrides ``error()`` (its own message, then ``self.exit(2)``), and its
    ``main`` turns that SystemExit into exit status 1."""
    log = tmp_path / "log.jsonl"
    env = _launcher_env(cli_env, venv_bin, tmp_path, HTTP_TELEMETRY_LOG=str(log))
    _, result = _same_run(venv_bin, ["http", "--bogus-option", "example.invalid"], env, tmp_path)
    assert result.returncode == 1
    (record,) = _records(log)
    assert record["attributes"]["process.exit.code"] == 1
    assert record["attributes"]["error.type"] == "usage_error"
    assert b"bogus" not in log.read_bytes()


def _module_package(root: Path, body: str) -> None:
    package = root / "exitpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(textwrap.dedent(body))


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("raise SystemExit(3)\n", 3),
        ("def main():\n    raise SystemExit(4)\nmain()\n", 4),
        ("raise SystemExit('message for the user')\n", 1),
        ("raise SystemExit(None)\n", 0),
        ("raise SystemExit\n", 0),
        ("raise SystemExit(256 + 7)\n", 7),
        ("import sys\nsys.exit(-1)\n", 255),
        ("import sys\nsys.exit('bye')\n", 1),
        ("raise ValueError('secret value')\n", 1),
    ],
    ids=["int", "in-function", "str", "none", "bare", "wraps", "negative", "sys-exit-str", "exc"],
)
def test_python_dash_m_every_system_exit(
    body: str, code: int, venv_bin: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    _module_package(tmp_path, body)
    log = tmp_path / "log.jsonl"
    env = _launcher_env(cli_env, venv_bin, tmp_path, EXITPKG_TELEMETRY_LOG=str(log))
    _, result = _same_run(venv_bin, ["python", "-m", "exitpkg"], env, tmp_path)
    assert result.returncode == code
    (record,) = _records(log)
    assert record["attributes"]["process.exit.code"] == code
    expected_type = {0: None, 1: "exit"}.get(code, "exit")
    if "ValueError" in body:
        expected_type = "ValueError"
    assert record["attributes"].get("error.type") == expected_type
    assert b"secret value" not in log.read_bytes()
    assert b"message for the user" not in log.read_bytes()


@pytest.mark.parametrize(
    ("body", "code", "error_type"),
    [
        ("import sys\nsys.exit(5)\n", 5, "exit"),
        ("import sys\nsys.exit()\n", 0, None),
        ("import sys\nsys.exit('a message')\n", 1, "exit"),
        ("raise KeyError('k')\n", 1, "KeyError"),
        ("print('done')\n", 0, None),
    ],
)
def test_plain_script_under_the_launcher(
    body: str,
    code: int,
    error_type: str | None,
    venv_bin: Path,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    (tmp_path / "job.py").write_text(body)
    log = tmp_path / "log.jsonl"
    env = _launcher_env(cli_env, venv_bin, tmp_path, JOB_TELEMETRY_LOG=str(log))
    _, result = _same_run(venv_bin, ["python", "job.py"], env, tmp_path)
    assert result.returncode == code
    (record,) = _records(log)
    assert record["attributes"]["process.exit.code"] == code
    assert record["attributes"].get("error.type") == error_type


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is Python 3.12+")
def test_plain_script_raise_system_exit_at_top_level(
    venv_bin: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Python 3.10/3.11 record this as 0 (documented): no hook sees it."""
    (tmp_path / "job.py").write_text("raise SystemExit(6)\n")
    log = tmp_path / "log.jsonl"
    env = _launcher_env(cli_env, venv_bin, tmp_path, JOB_TELEMETRY_LOG=str(log))
    _, result = _same_run(venv_bin, ["python", "job.py"], env, tmp_path)
    assert result.returncode == 6
    (record,) = _records(log)
    assert record["attributes"]["process.exit.code"] == 6


# -- 2. child processes ------------------------------------------------------------------------


def _state_dirs(env: dict[str, str]) -> list[str]:
    root = Path(env["XDG_STATE_HOME"])
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_python_children_of_a_launched_script_record_nothing(
    venv_bin: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "child.py").write_text("print('child')\n")
    (tmp_path / "parent.py").write_text(
        textwrap.dedent(
            """
            import subprocess, sys
            subprocess.run([sys.executable, "-c", "print('inline child')"], check=True)
            subprocess.run([sys.executable, "child.py"], check=True)
            subprocess.run([sys.executable, "-m", "json.tool", "--help"], capture_output=True)
            """
        )
    )
    logs = {name: tmp_path / f"{name}.jsonl" for name in ("PARENT", "CHILD", "PYTHON_CLI", "JSON")}
    env = _launcher_env(
        cli_env,
        venv_bin,
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",  # spooled, never reached here
        **{f"{name}_TELEMETRY_LOG": str(path) for name, path in logs.items()},
    )
    env["OTEL_CLI_TELEMETRY_DRAINER_MAX_RUNTIME"] = "1"
    _, result = _same_run(venv_bin, ["python", "parent.py"], env, tmp_path)
    assert result.stdout == b"inline child\nchild\n"
    finish(env, "parent")
    assert len(_records(logs["PARENT"])) == 1  # the baseline run (no launcher) records nothing
    for name in ("CHILD", "PYTHON_CLI", "JSON"):
        assert not logs[name].exists(), f"a child process recorded itself ({name})"
    assert _state_dirs(env) == ["parent"]


def test_pip_building_in_a_python_child_is_one_command(
    venv_bin: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """pip runs the build backend's hooks in a Python child (``_in_process.py``)."""
    project = tmp_path / "demo"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
    )
    (project / "backend.py").write_text(
        textwrap.dedent(
            """
            import os

            def get_requires_for_build_wheel(config_settings=None):
                return []

            def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
                info = os.path.join(metadata_directory, "demo-1.0.dist-info")
                os.makedirs(info)
                with open(os.path.join(info, "METADATA"), "w") as f:
                    f.write("Metadata-Version: 2.1\\nName: demo\\nVersion: 1.0\\n")
                return "demo-1.0.dist-info"
            """
        )
    )
    logs = {name: tmp_path / f"{name}.jsonl" for name in ("PIP", "IN_PROCESS", "PYTHON_CLI")}
    env = _launcher_env(
        cli_env, venv_bin, tmp_path, **{f"{n}_TELEMETRY_LOG": str(p) for n, p in logs.items()}
    )
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    argv = ["pip", "install", "--dry-run", "--no-build-isolation", "--no-deps", "--no-index"]
    result = _launch(venv_bin, [*argv, "./demo"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert b"Would install demo-1.0" in result.stdout
    (record,) = _records(logs["PIP"])
    assert record["attributes"]["process.exit.code"] == 0
    assert not logs["IN_PROCESS"].exists()
    assert not logs["PYTHON_CLI"].exists()
    assert _state_dirs(env) == ["pip"]


# -- 3. sampling -------------------------------------------------------------------------------

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("sampler", "parent", "expected"),
    [
        ("parentbased_always_on", None, True),
        ("parentbased_always_on", True, True),
        ("parentbased_always_on", False, False),
        ("parentbased_always_off", None, False),
        ("parentbased_always_off", True, True),
        ("always_on", False, True),
        ("always_off", True, False),
        ("parentbased_traceidratio", False, False),
        ("parentbased_traceidratio", True, True),
    ],
)
def test_sampler_decisions(sampler: str, parent: bool | None, expected: bool) -> None:
    assert sample(sampler, 0.0 if "ratio" in sampler else 1.0, PARENT_TRACE, parent) is expected


def test_trace_id_ratio_is_deterministic_on_the_low_64_bits() -> None:
    low_small = "f" * 16 + "0000000000000001"
    low_large = "0" * 16 + "fffffffffffffff0"
    assert sample("traceidratio", 0.5, low_small, None)
    assert not sample("traceidratio", 0.5, low_large, None)
    assert not sample("traceidratio", 0.0, low_small, None)
    assert sample("traceidratio", 1.0, low_large, None)
    import os

    kept = sum(sample("traceidratio", 0.25, os.urandom(16).hex(), None) for _ in range(4000))
    assert 800 < kept < 1200


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, ("parentbased_always_on", 1.0)),
        ({"OTEL_TRACES_SAMPLER": "Always_Off"}, ("always_off", 1.0)),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
            ("traceidratio", 0.1),
        ),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "7"},
            ("traceidratio", 1.0),
        ),
        ({"OTEL_TRACES_SAMPLER": "xray"}, ("parentbased_always_on", 1.0)),
    ],
)
def test_resolve_sampler(environ: dict[str, str], expected: tuple[str, float]) -> None:
    assert resolve_sampler(environ) == expected


def test_traceparent_flags() -> None:
    assert parse_parent(f"00-{PARENT_TRACE}-00f067aa0ba902b7-01") == (
        PARENT_TRACE,
        "00f067aa0ba902b7",
        True,
    )
    assert parse_parent(f"00-{PARENT_TRACE}-00f067aa0ba902b7-00")[2] is False  # type: ignore[index]


@pytest.mark.parametrize(
    ("extra", "sampled"),
    [
        ({"TRACEPARENT": f"00-{PARENT_TRACE}-00f067aa0ba902b7-00"}, False),
        ({"TRACEPARENT": f"00-{PARENT_TRACE}-00f067aa0ba902b7-01"}, True),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, False),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, False),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, False),
        ({}, True),
    ],
    ids=["parent-00", "parent-01", "always_off", "ratio-0", "pb-always-off", "default"],
)
def test_unsampled_command_sends_metrics_not_spans(
    extra: dict[str, str], sampled: bool, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """A record the sampler drops is still in the local history, and its metrics are sent."""
    log = tmp_path / "log.jsonl"
    with OtlpHttpReceiver() as receiver:
        env = {
            **cli_env,
            "ARGPARSEAPP_TELEMETRY": "1",
            "ARGPARSEAPP_TELEMETRY_LOG": str(log),
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            **extra,
        }
        result = run_app("argparse_app.py", ["deploy"], env)
        assert result.returncode == 0, result.stderr
        points = wait_for_metric(receiver, "cli_telemetry.command.duration")
        finish(env, "argparseapp")
        spans = receiver.spans()
    (record,) = _records(log)
    assert record["sampled"] is sampled
    assert sum(p["count"] for p in points) == 1
    if sampled:
        (span,) = wait_for_commands(receiver, 1)
        if "TRACEPARENT" in extra:
            assert span["trace_id"] == PARENT_TRACE
    else:
        assert spans == []
    # It counts in the local report all the same.
    from otel_cli_telemetry.handoff import local_log
    from otel_cli_telemetry.paths import Paths

    paths = Paths(str(Path(env["XDG_STATE_HOME"]) / "argparseapp" / "otel-cli-telemetry"))
    (kept,) = list(local_log.read(paths))
    assert kept["span_id"] == record["span_id"]


# -- 5. the OTEL_* variables -------------------------------------------------------------------


def test_per_signal_endpoints_alone() -> None:
    metrics_only = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:4318/v1/metrics"}
    assert resolve_endpoint(None, metrics_only) == "http://m:4318/v1/metrics"
    assert signal_endpoint(None, metrics_only, "TRACES") is None
    assert any("traces: not sent" in p for p in otel_problems(metrics_only))
    traces_only = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/v1/traces"}
    assert resolve_endpoint(None, traces_only) == "http://t:4318/v1/traces"
    assert any("metrics: not sent" in p for p in otel_problems(traces_only))


def test_exporters_none() -> None:
    both_off = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
    }
    assert resolve_endpoint(None, both_off) is None  # nothing to send: nothing spooled
    assert not exporter_enabled({"OTEL_TRACES_EXPORTER": "otlp,none"}, "TRACES")
    assert exporter_enabled({"OTEL_TRACES_EXPORTER": "otlp"}, "TRACES")
    assert exporter_enabled({}, "METRICS")
    assert not exporter_enabled({"OTEL_METRICS_EXPORTER": "prometheus"}, "METRICS")
    assert any(
        "only otlp and none" in p for p in otel_problems({"OTEL_METRICS_EXPORTER": "prometheus"})
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", "delta"), ("CUMULATIVE", "cumulative"), ("lowmemory", "lowmemory"), ("x", "delta")],
)
def test_metrics_temporality(value: str, expected: str) -> None:
    environ = {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": value}
    assert resolve_metrics_temporality(environ) == expected


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "http/json: not supported"),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "10"}, "bounded to 200..10000 ms"),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}, "not a number of milliseconds"),
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, "jaeger_remote: not supported"),
        ({"OTEL_PROPAGATORS": "b3"}, "only tracecontext"),
        ({"OTEL_CONFIG_FILE": "/etc/otel.yaml"}, "declarative configuration is not read"),
        (
            {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "sometimes"},
            "not one of delta, cumulative, lowmemory",
        ),
    ],
)
def test_refused_variables_are_reported(environ: dict[str, str], needle: str) -> None:
    assert any(needle in p for p in otel_problems(environ)), otel_problems(environ)


def test_honoured_variables_are_not_reported() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "3000",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.5",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "cumulative",
        "OTEL_PROPAGATORS": "tracecontext,baggage",
        "OTEL_TRACES_EXPORTER": "otlp",
    }
    assert otel_problems(environ) == []


def test_metrics_endpoint_alone_delivers_metrics(cli_env: dict[str, str], tmp_path: Path) -> None:
    with OtlpHttpReceiver() as receiver:
        env = {
            **cli_env,
            "ARGPARSEAPP_TELEMETRY": "1",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": receiver.metrics_url,
        }
        assert run_app("argparse_app.py", ["deploy"], env).returncode == 0
        points = wait_for_metric(receiver, "cli_telemetry.command.duration")
        finish(env, "argparseapp")
        assert receiver.spans() == []
    assert sum(p["count"] for p in points) == 1
    assert {r.path for r in receiver.requests} <= {"/v1/metrics"}


def test_traces_exporter_none_sends_only_metrics(cli_env: dict[str, str], tmp_path: Path) -> None:
    with OtlpHttpReceiver() as receiver:
        env = {
            **cli_env,
            "ARGPARSEAPP_TELEMETRY": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_TRACES_EXPORTER": "none",
        }
        assert run_app("argparse_app.py", ["deploy"], env).returncode == 0
        wait_for_metric(receiver, "cli_telemetry.command.duration")
        finish(env, "argparseapp")
        assert receiver.spans() == []
        assert all(r.path == "/v1/metrics" for r in receiver.requests)


def test_exit_status_unchanged_by_sampling(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "ARGPARSEAPP_TELEMETRY": "1", "OTEL_TRACES_SAMPLER": "always_off"}
    assert exit_status(run_app("argparse_app.py", ["deploy", "--do", "exit3"], env).returncode) == 3


# -- 4. one start for the command span -----------------------------------------------------------

_SLOW_START = """
import time
time.sleep(0.3)  # heavy imports before the SDK is even imported
import otel_cli_telemetry as telemetry
telemetry.init(app="{app}", enabled=True)
{body}
"""

_FRAMEWORK_BODIES = {
    "click": "import click\n@click.command()\ndef main():\n    pass\nmain()\n",
    "typer": "import typer\napp = typer.Typer()\n@app.command()\ndef main():\n    pass\napp()\n",
    "argparse": "import argparse\nargparse.ArgumentParser().parse_args()\n",
    "plain": "print('done')\n",
}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process start from /proc")
@pytest.mark.parametrize("framework", sorted(_FRAMEWORK_BODIES))
def test_command_span_starts_at_process_start(
    framework: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Every framework's span starts when the process did (not at ``main()``), so start-up
    and imports count and durations compare across frameworks."""
    import time

    app = f"start{framework}"
    script = tmp_path / f"{app}.py"
    script.write_text(_SLOW_START.format(app=app, body=_FRAMEWORK_BODIES[framework]))
    log = tmp_path / "log.jsonl"
    env = {**cli_env, f"{app.upper()}_TELEMETRY_LOG": str(log)}
    before = time.time_ns()
    result = run_app(script, [], env)
    assert result.returncode == 0, result.stderr
    (record,) = _records(log)
    tick = 50_000_000  # /proc's start time has a resolution of 10 ms; clocks are read apart
    assert before - tick <= record["start_ns"] <= before + 300_000_000
    assert record["end_ns"] - record["start_ns"] >= 300_000_000


# -- 5b. with opentelemetry-distro installed -------------------------------------------------------

DISTRO = "opentelemetry-distro==0.66b1"


@pytest.fixture(scope="session")
def distro_site(venv_bin: Path) -> Path:
    """opentelemetry-distro alone (its dependencies are in the instrument venv), installed
    into a directory that a test puts on PYTHONPATH: the other launcher tests run without it."""
    site = ROOT / ".work" / "distro-site"
    stamp = site / ".installed"
    if not (stamp.exists() and stamp.read_text() == DISTRO):
        subprocess.run(["rm", "-rf", str(site)], check=True)
        done = subprocess.run(
            [str(venv_bin / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
             "--disable-pip-version-check", "--target", str(site), DISTRO],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"installing {DISTRO} failed:\n{done.stderr}")
        stamp.write_text(DISTRO)
    return site


def test_distro_with_http_protobuf_is_quiet_and_delivers(
    venv_bin: Path, distro_site: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "q.sql").write_text("select a from b\n")
    with OtlpHttpReceiver() as receiver:
        env = _launcher_env(
            cli_env,
            venv_bin,
            tmp_path,
            PYTHONPATH=str(distro_site),
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        )
        _, result = _same_run(venv_bin, ["sqlformat", "q.sql"], env, tmp_path)
        assert result.stderr == b""
        (span,) = wait_for_commands(receiver, 1)
        finish(env, "sqlformat")
    assert span["name"] == "sqlformat"


def test_distro_default_grpc_without_the_extra(
    venv_bin: Path, distro_site: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The distro sets OTEL_EXPORTER_OTLP_PROTOCOL=grpc; the instrument venv has no grpc
    exporter, so the distro's own configurator fails (its traceback, documented) and the
    launcher loads no instrumentor: nothing is recorded, nothing waits in a spool."""
    (tmp_path / "q.sql").write_text("select a from b\n")
    env = _launcher_env(
        cli_env,
        venv_bin,
        tmp_path,
        PYTHONPATH=str(distro_site),
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
    )
    result = _launch(venv_bin, ["sqlformat", "q.sql"], env, tmp_path)
    assert result.returncode == 0
    assert b"otlp_proto_grpc" in result.stderr  # the distro's configurator, not this SDK
    assert b"otel_cli_telemetry" not in result.stderr
    assert _state_dirs(env) == []


def test_grpc_without_the_extra_is_delivered_over_http(
    venv_bin: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """An app asks for grpc where the grpc extra is not installed: records do not wait in the
    spool for an exporter that is not there; they go over OTLP/HTTP and ``doctor`` says why."""
    from support import APPS

    with OtlpHttpReceiver() as receiver:
        env = {
            **_launcher_env(cli_env, venv_bin, tmp_path),
            "ARGPARSEAPP_TELEMETRY": "1",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        }
        result = run_app(APPS / "argparse_app.py", ["deploy"], env, python=str(venv_bin / "python"))
        assert result.returncode == 0, result.stderr
        (span,) = wait_for_commands(receiver, 1)
        finish(env, "argparseapp")
    assert span["attributes"]["cli_telemetry.command"] == "deploy"
    assert spooled_count(env, "argparseapp") == 0


def spooled_count(env: dict[str, str], app: str) -> int:
    from seed_support import spooled

    return len(spooled(env, app))


# -- 6. the app's own OpenTelemetry spans nest under the command span -----------------------------

_OTEL_APP = """
import json, sys, urllib.request
{early}
import otel_cli_telemetry as telemetry
telemetry.init(app="otelapp", enabled=True)

def work():
    from opentelemetry import propagate, trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("the-app")
    with tracer.start_as_current_span("outside-phase"):
        pass
    with telemetry.phase("upload"):
        with tracer.start_as_current_span("inside-phase"):
            if {instrumented}:  # a real instrumented client: its own CLIENT span, traceparent
                from opentelemetry.instrumentation.urllib import URLLibInstrumentor

                URLLibInstrumentor().instrument()
                urllib.request.urlopen(sys.argv[1]).read()
            else:  # the propagation API that instrumented clients call
                headers = {{}}
                propagate.inject(headers)
                urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers=headers)).read()
    spans = [
        {{
            "name": s.name,
            "trace": format(s.context.trace_id, "032x"),
            "span": format(s.context.span_id, "016x"),
            "parent": format(s.parent.span_id, "016x") if s.parent else None,
        }}
        for s in exporter.get_finished_spans()
    ]
    with open(sys.argv[2], "w") as f:
        json.dump(spans, f)

{run}
"""

_RUNS = {
    "plain": ("", "work()"),
    "urllib-instrumented": ("", "work()"),
    "plain-otel-imported-first": ("import opentelemetry.trace", "work()"),
    "click": (
        "import click",
        "@click.command()\n@click.argument('url')\n@click.argument('out')\n"
        "def main(url, out):\n    work()\nmain()",
    ),
}


class _HeaderServer:
    """A loopback HTTP server that keeps the ``traceparent`` header of each GET."""

    def __init__(self) -> None:
        import http.server
        import threading

        seen: list[str | None] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.headers.get("traceparent"))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.seen = seen
        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/deploy"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.mark.parametrize("run", sorted(_RUNS))
@pytest.mark.parametrize("sampled", [True, False], ids=["sampled", "parent-not-sampled"])
def test_the_apps_spans_and_requests_continue_the_command_trace(
    run: str, sampled: bool, cli_env: dict[str, str], tmp_path: Path
) -> None:
    early, body = _RUNS[run]
    script = tmp_path / "otelapp.py"
    instrumented = run == "urllib-instrumented"
    script.write_text(_OTEL_APP.format(early=early, run=body, instrumented=instrumented))
    log, out = tmp_path / "log.jsonl", tmp_path / "spans.json"
    env = {**cli_env, "OTELAPP_TELEMETRY_LOG": str(log)}
    if not sampled:
        env["TRACEPARENT"] = f"00-{PARENT_TRACE}-00f067aa0ba902b7-00"
    server = _HeaderServer()
    try:
        result = run_app(script, [server.url, str(out)], env)
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    (record,) = _records(log)
    (phase,) = record["phases"]
    (header,) = server.seen
    assert header is not None
    _version, trace_id, span_id, flags = header.split("-")
    assert trace_id == record["trace_id"]
    assert flags == ("01" if sampled else "00")
    spans = {s["name"]: s for s in json.loads(out.read_text())}
    if not sampled:  # the app's ParentBased sampler follows the command's decision
        assert spans == {}
        return
    assert spans["outside-phase"]["trace"] == record["trace_id"]
    assert spans["outside-phase"]["parent"] == record["span_id"]
    assert spans["inside-phase"]["trace"] == record["trace_id"]
    assert spans["inside-phase"]["parent"] == phase["span_id"]
    if instrumented:  # urllib's CLIENT span sent the header, as a child of the app's span
        (client,) = [s for n, s in spans.items() if n not in ("outside-phase", "inside-phase")]
        assert client["trace"] == record["trace_id"]
        assert client["parent"] == spans["inside-phase"]["span"]
        assert span_id == client["span"]
    else:
        assert span_id == spans["inside-phase"]["span"]


def test_no_opentelemetry_import_when_the_app_uses_none(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "plainapp.py"
    script.write_text(
        "import sys\nimport otel_cli_telemetry as telemetry\n"
        "telemetry.init(app='plainapp', enabled=True)\n"
        "with telemetry.phase('p'):\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    result = run_app(script, [], {**cli_env, "PLAINAPP_TELEMETRY_LOG": str(tmp_path / "l")})
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"[]\n"


# -- 7. conventions -------------------------------------------------------------------------------


def test_service_instance_id_and_schema_url_are_sent(cli_env: dict[str, str]) -> None:
    from otel_cli_telemetry.schema import SEMCONV_SCHEMA_URL

    with OtlpHttpReceiver() as receiver:
        env = {
            **cli_env,
            "ARGPARSEAPP_TELEMETRY": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        }
        assert run_app("argparse_app.py", ["deploy"], env).returncode == 0
        (span,) = wait_for_commands(receiver, 1)
        wait_for_metric(receiver, "cli_telemetry.command.duration")
        finish(env, "argparseapp")
        messages = [(r.signal, r.message) for r in receiver.requests if r.message is not None]
    resource = span["resource"]
    assert "cli.installation.id" not in resource  # removed: service.instance.id carries it
    assert len(resource["service.instance.id"]) == 36
    assert SEMCONV_SCHEMA_URL == "https://opentelemetry.io/schemas/1.44.0"
    urls = set()
    for signal, message in messages:
        groups = message.resource_spans if signal == "traces" else message.resource_metrics
        for group in groups:
            urls.add(group.schema_url)
            scopes = group.scope_spans if signal == "traces" else group.scope_metrics
            urls.update(scope.schema_url for scope in scopes)
    assert {s for s, _ in messages} == {"traces", "metrics"}
    assert urls == {SEMCONV_SCHEMA_URL}


# -- doctor and status -----------------------------------------------------------------------------


def _admin(bin_dir: Path, app: str, args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(bin_dir / "otel-cli-telemetry"), "--app", app, *args],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.stderr == b""
    return done.stdout.decode()


def test_status_explains_a_launcher_run(
    venv_bin: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """After ``opentelemetry-instrument sqlformat``, the admin command describes consent as
    the launcher decides it (not "off until the notice has been shown")."""
    (tmp_path / "q.sql").write_text("select a from b\n")
    env = _launcher_env(cli_env, venv_bin, tmp_path, OTEL_SERVICE_NAME="sql formatter")
    assert _launch(venv_bin, ["sqlformat", "q.sql"], env, tmp_path).returncode == 0
    out = _admin(venv_bin, "sqlformat", ["status"], env)
    assert "Telemetry for sqlformat is on." in out
    assert "decided by: opentelemetry-instrument: the operator's opt-in" in out
    assert "service:    sql formatter" in out
    assert "notice" not in out.split("decided by:")[1].splitlines()[0]
    off = _admin(venv_bin, "sqlformat", ["status"], {**env, "DO_NOT_TRACK": "1"})
    assert "is off" in off
    assert "DO_NOT_TRACK is set" in off


def test_status_and_doctor_refuse_what_is_not_honoured(
    venv_bin: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Loudly, in ``status`` and ``doctor``: never at the user's command (whose output the
    launcher tests compare byte for byte)."""
    env = _launcher_env(
        cli_env,
        venv_bin,
        tmp_path,
        ARGPARSEAPP_TELEMETRY="1",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",  # the instrument venv has no grpc extra
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="http/json",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://127.0.0.1:9/v1/traces",
        OTEL_EXPORTER_OTLP_TIMEOUT="10",
        OTEL_TRACES_SAMPLER="xray",
    )
    status = _admin(venv_bin, "argparseapp", ["status"], env)
    doctor = _admin(venv_bin, "argparseapp", ["doctor"], env)
    for out in (status, doctor):
        assert "OpenTelemetry variables not honoured as set:" in out
        assert "the grpc extra is not installed: sent as http/protobuf" in out
        assert "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=http/json: not supported" in out
        assert "metrics: not sent: no OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" in out
        assert "OTEL_EXPORTER_OTLP_TIMEOUT=10 ms: bounded to 200..10000 ms" in out
        assert "OTEL_TRACES_SAMPLER=xray: not supported" in out
        assert "protocol:   http/protobuf (grpc asked; the grpc extra is not installed)" in out
    assert "endpoint check (http/protobuf, timeout 0.2 s)" in doctor


@pytest.mark.parametrize(("flags", "sampler"), [("00", ""), ("01", ""), ("01", "always_off")])
def test_subprocess_env_passes_the_sampling_decision_on(
    flags: str, sampler: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "parentapp.py"
    script.write_text(
        "import otel_cli_telemetry as telemetry\n"
        "telemetry.init(app='parentapp', enabled=True)\n"
        "print(telemetry.subprocess_env()['TRACEPARENT'])\n"
    )
    env = {
        **cli_env,
        "PARENTAPP_TELEMETRY_LOG": str(tmp_path / "log.jsonl"),
        "TRACEPARENT": f"00-{PARENT_TRACE}-00f067aa0ba902b7-{flags}",
        "OTEL_TRACES_SAMPLER": sampler,
    }
    result = run_app(script, [], env)
    assert result.returncode == 0, result.stderr
    (record,) = _records(tmp_path / "log.jsonl")
    expected = "01" if record["sampled"] else "00"
    assert result.stdout.decode().strip() == f"00-{PARENT_TRACE}-{record['span_id']}-{expected}"
    assert record["sampled"] is (flags == "01" and sampler != "always_off")


_COMMAND_EXITS = {
    "click": ("import click\n@click.command()\ndef main():\n    {stmt}\nmain()\n"),
    "typer": (
        "import typer\napp = typer.Typer()\n@app.command()\ndef main():\n    {stmt}\napp()\n"
    ),
    "command": ("@telemetry.command('run')\ndef main():\n    {stmt}\nmain()\n"),
}


@pytest.mark.parametrize("framework", sorted(_COMMAND_EXITS))
@pytest.mark.parametrize(
    ("stmt", "code", "error_type"),
    [
        ("raise SystemExit(3)", 3, "exit"),
        ("raise SystemExit('failed: details')", 1, "exit"),
        ("raise SystemExit(None)", 0, None),
        ("raise SystemExit(258)", 2, "exit"),
        ("import sys; sys.exit(-2)", 254, "exit"),
        ("raise OSError('secret')", 1, "OSError"),
    ],
    ids=["int", "str", "none", "wraps", "negative", "exception"],
)
def test_every_system_exit_inside_a_command(
    framework: str,
    stmt: str,
    code: int,
    error_type: str | None,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """click, typer and the generic ``command()``: the boundary sees every way out."""
    app = f"exit{framework}"
    script = tmp_path / f"{app}.py"
    script.write_text(
        f"import otel_cli_telemetry as telemetry\ntelemetry.init(app='{app}', enabled=True)\n"
        + _COMMAND_EXITS[framework].format(stmt=stmt)
    )
    log = tmp_path / "log.jsonl"
    result = run_app(script, [], {**cli_env, f"{app.upper()}_TELEMETRY_LOG": str(log)})
    assert result.returncode == code
    (record,) = _records(log)
    assert record["attributes"]["process.exit.code"] == code
    assert record["attributes"].get("error.type") == error_type
    assert b"secret" not in log.read_bytes()
    assert b"details" not in log.read_bytes()
