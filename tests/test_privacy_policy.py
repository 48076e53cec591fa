"""``schema`` in every format, on every surface, and the published policy that cannot drift.

``docs/PRIVACY.md`` holds the generated policy of ``examples/deploy/deployctl.py`` between
``<!-- policy:start -->`` and ``<!-- policy:end -->``; it must equal what the generator
prints now. To refresh it after a deliberate change, run
``python examples/deploy/deployctl.py telemetry schema --format policy`` and paste.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from otel_cli_telemetry.schema import BUILTIN_RESOURCE_ATTRIBUTES, BUILTIN_SPAN_ATTRIBUTES

from support import ROOT, run_app

DEPLOYCTL = ROOT / "examples" / "deploy" / "deployctl.py"
PRIVACY_MD = ROOT / "docs" / "PRIVACY.md"
DEPLOYCTL_FIELDS = (
    "workspace.projects",
    "workspace.stages",
    "deploy.functions.added",
    "deploy.functions.updated",
    "deploy.functions.removed",
    "deploy.infrastructure_changed",
    "deploy.change",
)
DEPLOYCTL_METRICS = ("deploy.bytes_uploaded", "deploy.functions.changed", "deploy.build.duration")


def _deployctl(env: dict[str, str], *args: str) -> str:
    result = run_app(DEPLOYCTL, list(args), env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""  # no notice before the telemetry command
    return result.stdout.decode()


def _admin(env: dict[str, str], app: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "otel_cli_telemetry", "--app", app, *args],
        env=env,
        capture_output=True,
        check=False,
        timeout=30,
    )


def test_docs_policy_block_matches_the_generator(cli_env: dict[str, str]) -> None:
    generated = _deployctl(cli_env, "telemetry", "schema", "--format", "policy")
    text = PRIVACY_MD.read_text()
    match = re.search(r"<!-- policy:start -->\n(.*)<!-- policy:end -->", text, re.S)
    assert match, "docs/PRIVACY.md lacks the policy markers"
    assert match.group(1) == generated, (
        "docs/PRIVACY.md is stale: paste the output of "
        "`python examples/deploy/deployctl.py telemetry schema --format policy`"
    )


def test_policy_lists_every_field_and_the_real_opt_outs(cli_env: dict[str, str]) -> None:
    policy = _deployctl(cli_env, "telemetry", "schema", "--format", "policy")
    for key in (*BUILTIN_SPAN_ATTRIBUTES, *BUILTIN_RESOURCE_ATTRIBUTES, *DEPLOYCTL_FIELDS):
        assert f"| `{key}` |" in policy, key
    for metric in (*DEPLOYCTL_METRICS, "cli_telemetry.command.duration"):
        assert f"| `{metric}` |" in policy
    assert "functions added by the deploy" in policy  # each field's description
    for opt_out in (
        "`deployctl telemetry disable`",
        "`otel-cli-telemetry --app deployctl disable`",
        "`DEPLOYCTL_TELEMETRY=0`",
        "`DEPLOYCTL_NO_EVENTS=1`",
        "`DO_NOT_TRACK=1`",
        "`OTEL_SDK_DISABLED=true`",
        "`DEPLOYCTL_TELEMETRY_DEBUG=1`",
        "`DEPLOYCTL_TELEMETRY_LOG=records.jsonl`",
    ):
        assert opt_out in policy, opt_out
    for heading in (
        "### When anything is collected",
        "### What is collected",
        "### What is never collected",
        "### How to opt out",
        "### How to see what is collected",
        "### Where the data goes",
    ):
        assert heading in policy


def test_policy_for_ask_mode_and_an_endpoint(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "CONSENT": "ask", "ASK_SHARE": "0.1"}
    policy = run_app("consent_app.py", ["telemetry", "schema", "--format", "policy"], env)
    text = policy.stdout.decode()
    assert "Nothing is collected until you answer yes" in text
    assert "Only about 10% of installations are asked" in text
    assert (
        "| `consent.items` | identifier (or a number) | items handled by the run | consentapp |"
        in text
    )


def test_policy_does_not_depend_on_the_environment(cli_env: dict[str, str]) -> None:
    plain = _deployctl(cli_env, "telemetry", "schema", "--format", "policy")
    noisy = {
        **cli_env,
        "GITHUB_ACTIONS": "true",
        "DO_NOT_TRACK": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example:4318",
        "DEPLOYCTL_TELEMETRY_DEBUG": "1",
    }
    assert _deployctl(noisy, "telemetry", "schema", "--format", "policy") == plain


def test_schema_text_lists_every_field(cli_env: dict[str, str]) -> None:
    text = _deployctl(cli_env, "telemetry", "schema")
    for key in (*BUILTIN_SPAN_ATTRIBUTES, *BUILTIN_RESOURCE_ATTRIBUTES, *DEPLOYCTL_FIELDS):
        assert key in text
    for metric in DEPLOYCTL_METRICS:
        assert metric in text


def test_schema_json(cli_env: dict[str, str]) -> None:
    data = json.loads(_deployctl(cli_env, "telemetry", "schema", "--format", "json"))
    assert set(data["span_attributes"]) == set(BUILTIN_SPAN_ATTRIBUTES) | set(DEPLOYCTL_FIELDS)
    assert set(data["metrics"]) >= set(DEPLOYCTL_METRICS)


def test_schema_collector_allowlist(cli_env: dict[str, str]) -> None:
    try:
        from otel_cli_telemetry.admin.schema_collector import render_collector_allowlist  # noqa: F401
    except ImportError:
        pytest.skip("schema_collector.render_collector_allowlist is not there yet")
    text = _deployctl(cli_env, "telemetry", "schema", "--format", "collector")
    assert "  normalizer:" in text
    for key in DEPLOYCTL_FIELDS:
        assert key in text


@pytest.mark.parametrize(
    ("script", "app"),
    [
        ("click_app.py", "clickapp"),
        ("typer_app.py", "typerapp"),
        ("argparse_helper_app.py", "helperapp"),
    ],
)
def test_every_surface_prints_the_same_schema(
    cli_env: dict[str, str], script: str, app: str
) -> None:
    run_app(script, ["telemetry", "enable"], cli_env)  # saves the declared fields for the admin
    for fmt in ("text", "json", "policy"):
        in_app = run_app(script, ["telemetry", "schema", "--format", fmt], cli_env)
        assert in_app.returncode == 0, in_app.stderr
        admin = _admin(cli_env, app, "schema", "--format", fmt)
        assert admin.returncode == 0
        if fmt == "json":  # the app's metrics are known only inside the app
            in_app_data = json.loads(in_app.stdout)
            admin_data = json.loads(admin.stdout)
            assert in_app_data["span_attributes"] == admin_data["span_attributes"]
            assert in_app_data["schema_version"] == admin_data["schema_version"]
        elif fmt == "text":
            assert in_app.stdout == admin.stdout  # no app metrics in these apps
    bad = run_app(script, ["telemetry", "schema", "--format", "yaml"], cli_env)
    assert bad.returncode == 2
    assert bad.stdout == b""
