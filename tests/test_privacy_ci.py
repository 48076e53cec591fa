"""CI and AI-agent detection, checked at a real OTLP receiver.

In CI a first run shows no notice (nobody reads it; CI machines are new every job), is on by
default, and delivers in-process before exiting (no later run will drain the spool). The
span says ``cli_telemetry.ci.detected`` and which provider; an agent running the command is
named from a fixed table, never from the raw value of a variable.
"""

from __future__ import annotations

import pytest

from apps._harness import drainer_pids, history
from otlp_receiver import OtlpHttpReceiver
from support import run_app, state_dir, wait_for_drainer

CI_ENVIRONMENTS = {
    "github_actions": {"GITHUB_ACTIONS": "true"},
    "gitlab_ci": {"GITLAB_CI": "true"},
    "circleci": {"CIRCLECI": "true"},
    "travis_ci": {"TRAVIS": "true"},
    "azure_pipelines": {"TF_BUILD": "True"},
    "jenkins": {"JENKINS_URL": "https://jenkins.example.internal/"},
    "buildkite": {"BUILDKITE": "true"},
    "teamcity": {"TEAMCITY_VERSION": "2024.03"},
    "bitbucket_pipelines": {"BITBUCKET_BUILD_NUMBER": "17"},
    "appveyor": {"APPVEYOR": "True"},
    "aws_codebuild": {"CODEBUILD_BUILD_ID": "proj:1234"},
    "google_cloud_build": {"BUILDER_OUTPUT": "/builder/outputs"},
    "drone": {"DRONE": "true"},
    "generic": {"CI": "1"},
}


@pytest.mark.parametrize("provider", sorted(CI_ENVIRONMENTS))
def test_ci_first_run_no_notice_delivered_in_process(
    cli_env: dict[str, str], provider: str
) -> None:
    baseline = run_app("click_app.py", ["deploy"], {**cli_env, "WITH_TELEMETRY": "0"})
    with OtlpHttpReceiver() as receiver:
        env = {
            **cli_env,
            **CI_ENVIRONMENTS[provider],
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        }
        result = run_app("click_app.py", ["deploy"], env)
        assert (result.stdout, result.stderr, result.returncode) == (
            baseline.stdout,
            baseline.stderr,  # no notice in CI
            baseline.returncode,
        )
        # Delivered before the process exited: the spans are already there, no drainer.
        spans = receiver.spans()
        assert drainer_pids(state_dir(env, "clickapp")) == []
    command = next(s for s in spans if s["name"] == "clickapp deploy")
    assert command["attributes"]["cli_telemetry.ci.detected"] is True
    assert command["attributes"]["cli_telemetry.ci.provider"] == provider
    for value in CI_ENVIRONMENTS[provider].values():
        if len(value) > 4:
            for body in receiver.raw_bodies():
                assert value.encode() not in body


def test_not_ci_when_ci_is_false(cli_env: dict[str, str]) -> None:
    result = run_app("click_app.py", ["deploy"], {**cli_env, "CI": "false"})
    assert "collects anonymous usage telemetry" in result.stderr.decode()
    on = {**cli_env, "CI": "false", "CLICKAPP_TELEMETRY": "1"}
    run_app("click_app.py", ["deploy"], on)
    (record,) = history(on, "clickapp")
    assert record["attributes"]["cli_telemetry.ci.detected"] is False
    assert "cli_telemetry.ci.provider" not in record["attributes"]


@pytest.mark.parametrize(
    ("agent_env", "expected"),
    [
        ({"CLAUDECODE": "1"}, "claude_code"),
        ({"CURSOR_AGENT": "1"}, "cursor"),
        ({"GEMINI_CLI": "1"}, "gemini_cli"),
        ({"AI_AGENT": "codex"}, "codex"),
        ({"AI_AGENT": "private-agent-name-7f3a9"}, "other"),
    ],
)
def test_agent_detected_and_named_from_a_fixed_table(
    cli_env: dict[str, str], agent_env: dict[str, str], expected: str
) -> None:
    with OtlpHttpReceiver() as receiver:
        env = {
            **cli_env,
            **agent_env,
            "CLICKAPP_TELEMETRY": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        }
        assert run_app("click_app.py", ["deploy"], env).returncode == 0
        spans = receiver.wait_for_spans(2)
        wait_for_drainer(env, "clickapp")
    command = next(s for s in spans if s["name"] == "clickapp deploy")
    assert command["attributes"]["cli_telemetry.agent"] == expected
    assert command["attributes"]["cli_telemetry.ci.detected"] is False
    for body in receiver.raw_bodies():
        assert b"private-agent-name" not in body


def test_no_agent_attribute_without_an_agent(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "CLICKAPP_TELEMETRY": "1"}
    run_app("click_app.py", ["deploy"], env)
    (record,) = history(env, "clickapp")
    assert "cli_telemetry.agent" not in record["attributes"]
