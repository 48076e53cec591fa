"""Seed 003 (a Rust CLI's "CLI Telemetry Policy"), end to end with examples/telemetry-policy.

Checks each data point of "What We Collect" under its OpenTelemetry name, that nothing beyond
that list and the SDK's documented envelope is sent, the first-run notice that needs no input,
``telemetry enable|disable``, the per-run ``YOUR_PLATFORM_TELEMETRY_OPT_OUT=1``, and one test per
item of "What We DO NOT Collect".
"""

from __future__ import annotations

import re
import socket
import uuid
from pathlib import Path

import pytest

from otlp_receiver import OtlpHttpReceiver
from seed_support import (
    assert_never_sent,
    assert_nothing_sent,
    finish,
    python_argv,
    run_example,
    run_on_pty,
    sending_env,
    wait_for_commands,
    wait_for_metric,
)
from support import exit_status

APP = "your-cli"
SCRIPT = "telemetry-policy/yourcli.py"

#: The policy's data points -> where they are: ("span"|"resource", attribute).
POLICY_FIELDS = {
    "event_version": ("resource", "cli_telemetry.schema.version"),
    "installation_id": ("resource", "service.instance.id"),
    "cli_version": ("resource", "service.version"),
    "command": ("span", "cli_telemetry.command"),
    "os_arch": ("resource", "os.type"),  # with host.arch, below
    "status": ("span", "process.exit.code"),
    "is_interactive": ("span", "process.interactive"),
}
#: What the SDK adds to every record (documented in examples/telemetry-policy/README.md).
SPAN_ENVELOPE = {
    "process.executable.name",
    "process.pid",
    "cli_telemetry.flags",
    "cli_telemetry.ci.detected",
    "cli_telemetry.ci.provider",
    "cli_telemetry.agent",
    "cli_telemetry.sdk.overhead_ms",
    "cli_telemetry.sdk.dropped",
}
RESOURCE_ENVELOPE = {
    "service.name",
    "os.version",
    "process.runtime.name",
    "process.runtime.version",
    "telemetry.sdk.name",
    "telemetry.sdk.language",
    "telemetry.sdk.version",
}
POLICY_SPAN = {"cli_telemetry.command", "process.exit.code", "error.type", "process.interactive"}
POLICY_RESOURCE = {
    "cli_telemetry.schema.version",
    "service.instance.id",  # the installation id, under its semantic-conventions name
    "service.version",
    "os.type",
    "host.arch",
}
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def _root(env: dict[str, str]) -> Path:
    return Path(env["HOME"]) / ".your-platform"


def _on(cli_env: dict[str, str], receiver: OtlpHttpReceiver, **extra: str) -> dict[str, str]:
    return sending_env(cli_env, receiver, YOUR_CLI_TELEMETRY="1", **extra)


def _run_one(
    cli_env: dict[str, str], args: list[str], **extra: str
) -> tuple[dict[str, object], OtlpHttpReceiver, int]:
    """Run one command with telemetry on; (its command span, the receiver, exit status)."""
    with OtlpHttpReceiver() as receiver:
        env = _on(cli_env, receiver, **extra)
        result = run_example(SCRIPT, args, env)
        (span,) = wait_for_commands(receiver, 1)
        finish(env, APP, _root(env))
    return span, receiver, exit_status(result.returncode)


def test_exactly_the_policy_fields(cli_env: dict[str, str], tmp_path: Path) -> None:
    manifest = tmp_path / "your.toml"
    manifest.write_text("name = 'svc'\n")
    with OtlpHttpReceiver() as receiver:
        env = _on(cli_env, receiver)
        ok = run_example(SCRIPT, ["build", "--manifest", str(manifest)], env)
        assert ok.returncode == 0
        manifest.write_text("version = 1\n")
        bad = run_example(SCRIPT, ["build", "--manifest", str(manifest)], env)
        assert exit_status(bad.returncode) == 3
        spans = wait_for_commands(receiver, 2)
        points = wait_for_metric(receiver, "cli_telemetry.command.duration")
        finish(env, APP, _root(env))
    installation_id = (_root(cli_env) / "installation_id").read_text().strip()
    assert UUID4.match(installation_id)
    success, failure = sorted(spans, key=lambda s: s["attributes"]["process.exit.code"])
    for span in spans:
        attributes, resource = span["attributes"], span["resource"]
        for where, key in POLICY_FIELDS.values():
            assert key in (resource if where == "resource" else attributes), key
        assert resource["service.instance.id"] == installation_id
        assert "cli.installation.id" not in resource
        assert resource["service.version"] == "0.2.1"
        assert resource["os.type"]  # os_arch: os.type + host.arch, e.g. linux + amd64
        assert resource["host.arch"]
        assert resource["cli_telemetry.schema.version"]
        assert attributes["cli_telemetry.command"] == "build"
        assert attributes["process.interactive"] is False
        assert span["end_ns"] > span["start_ns"]  # duration_ms
        # nothing beyond the policy and the documented envelope; no custom field at all
        assert set(attributes) <= POLICY_SPAN | SPAN_ENVELOPE, set(attributes) - POLICY_SPAN
        assert set(resource) <= POLICY_RESOURCE | RESOURCE_ENVELOPE
    assert success["status_code"] == "UNSET"
    assert "error.type" not in success["attributes"]
    assert failure["status_code"] == "ERROR"  # status: failed
    assert failure["attributes"]["process.exit.code"] == 3
    assert failure["attributes"]["error.type"] == "InvalidManifestError"  # error_code
    assert failure["status_message"] == ""
    assert {p["attributes"]["process.exit.code"] for p in points} <= {0, 3}
    assert_never_sent(receiver, "no name in", "version = 1", str(manifest))


def test_is_interactive_on_a_terminal(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = _on(cli_env, receiver)
        code, output = run_on_pty(python_argv(SCRIPT, "deploy", "web"), env)
        assert code == 0, output
        (span,) = wait_for_commands(receiver, 1)
        finish(env, APP, _root(env))
    assert span["attributes"]["process.interactive"] is True


def test_first_run_notice_needs_no_input(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver)
        # stdin at end of input: anything waiting for an answer would fail or hang
        first = run_example(SCRIPT, ["deploy", "web"], env, stdin="", timeout=20)
        assert first.returncode == 0
        assert first.stdout == b"deployed web to dev\n"
        assert b"your-cli collects anonymous usage telemetry" in first.stderr
        assert b"your-cli telemetry disable" in first.stderr
        assert b"YOUR_PLATFORM_TELEMETRY_OPT_OUT=1" in first.stderr
        assert_nothing_sent(receiver, env, APP, wait=0.5, root=_root(env))
        second = run_example(SCRIPT, ["deploy", "web"], env, stdin="")
        assert second.returncode == 0
        assert second.stderr == b""  # one-time
        wait_for_commands(receiver, 1)
        finish(env, APP, _root(env))


def test_telemetry_disable_and_enable(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver)
        off = run_example(SCRIPT, ["telemetry", "disable"], env)
        assert off.returncode == 0
        assert b"disabled" in off.stdout
        assert run_example(SCRIPT, ["deploy", "web"], env).returncode == 0
        assert_nothing_sent(receiver, env, APP, wait=0.5, root=_root(env))
        on = run_example(SCRIPT, ["telemetry", "enable"], env)
        assert on.returncode == 0
        assert b"enabled" in on.stdout
        assert run_example(SCRIPT, ["deploy", "web"], env).returncode == 0
        (span,) = wait_for_commands(receiver, 1)  # the telemetry commands are not recorded
        finish(env, APP, _root(env))
    assert span["attributes"]["cli_telemetry.command"] == "deploy"


def test_env_opt_out_for_a_single_run(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver)
        assert run_example(SCRIPT, ["telemetry", "enable"], env).returncode == 0
        opted_out = {**env, "YOUR_PLATFORM_TELEMETRY_OPT_OUT": "1"}
        assert run_example(SCRIPT, ["deploy", "web"], opted_out).returncode == 0
        assert_nothing_sent(receiver, env, APP, wait=0.5, root=_root(env))
        assert run_example(SCRIPT, ["deploy", "web"], env).returncode == 0  # only that run
        wait_for_commands(receiver, 1)
        finish(env, APP, _root(env))


# -- What We DO NOT Collect: one test per item ------------------------------------------------


def test_never_pii(cli_env: dict[str, str]) -> None:
    """No names, email addresses, usernames."""
    span, receiver, code = _run_one(
        cli_env,
        ["deploy", "web", "--owner", "Alice Liddell <alice.liddell@example.com>"],
        USER="aliddell",
        LOGNAME="aliddell",
    )
    assert code == 0
    assert_never_sent(receiver, "alice", "Alice", "Liddell", "aliddell", "example.com")
    assert_never_sent(receiver, cli_env["HOME"])
    assert not {"process.owner", "user.name", "user.email"} & set(span["attributes"])


def _mac() -> str:
    node = uuid.getnode()
    return ":".join(f"{(node >> shift) & 0xFF:02x}" for shift in range(40, -8, -8))


def test_never_ip_hostname_or_mac(cli_env: dict[str, str]) -> None:
    span, receiver, code = _run_one(cli_env, ["deploy", "10.20.30.40", "--env", "192.168.7.7"])
    assert code == 0
    keys = set(span["attributes"]) | set(span["resource"])
    assert not {k for k in keys if k.startswith(("host.name", "host.ip", "host.mac", "net."))}
    hostname = socket.gethostname()
    needles = ["10.20.30.40", "192.168.7.7", _mac(), _mac().replace(":", "")]
    if len(hostname) >= 6:
        needles.append(hostname)
    assert_never_sent(receiver, *needles)


def test_never_command_arguments_or_flag_values(cli_env: dict[str, str]) -> None:
    args = ["deploy", "project-orion", "--env", "prod-eu-7", "--token", "tkn_9f8e7d6c5b4a"]
    span, receiver, code = _run_one(cli_env, args)
    assert code == 0
    assert span["attributes"]["cli_telemetry.command"] == "deploy"
    assert_never_sent(receiver, "project-orion", "prod-eu-7", "tkn_9f8e7d6c5b4a")


def test_never_environment_variables(cli_env: dict[str, str]) -> None:
    span, receiver, code = _run_one(
        cli_env,
        ["deploy", "web"],
        DATABASE_URL="postgres://svc:pw-Zx81@db.internal:5432/main",
        YOUR_PLATFORM_API_KEY="ypk_live_77aa88bb99cc",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=secret-stage,team=payments",
    )
    assert code == 0
    keys = set(span["attributes"]) | set(span["resource"])
    assert not {k for k in keys if k.startswith("process.environment_variable")}
    assert "deployment.environment" not in keys
    assert_never_sent(receiver, "pw-Zx81", "db.internal", "ypk_live", "secret-stage", "payments")


@pytest.mark.parametrize("valid", [True, False], ids=["read", "rejected"])
def test_never_file_contents(cli_env: dict[str, str], tmp_path: Path, valid: bool) -> None:
    manifest = tmp_path / "orion.toml"
    body = "service-orion-internal-7731"
    manifest.write_text(f"name = '{body}'\n" if valid else f"title = '{body}'\n")
    _, receiver, code = _run_one(cli_env, ["build", "--manifest", str(manifest)])
    assert code == (0 if valid else 3)
    assert_never_sent(receiver, body, "orion.toml", str(tmp_path))
