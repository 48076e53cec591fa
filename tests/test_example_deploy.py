"""Seed 000 (Mantil), end to end: ``examples/deploy/deployctl.py`` against a real OTLP receiver.

Mantil's policy promises a per-command event with workspace, stage and project counts; for
``deploy``: functions added, updated and removed, the build/upload/update durations, the bytes
uploaded and whether infrastructure changed; an env var to opt out (``MANTIL_NO_EVENTS``,
here ``DEPLOYCTL_NO_EVENTS``); and that AWS credentials typed on the command line are removed.
"""

from __future__ import annotations

import re

from otlp_receiver import OtlpHttpReceiver
from seed_support import (
    assert_never_sent,
    assert_never_stored,
    assert_nothing_sent,
    finish,
    only_command_span,
    run_example,
    sending_env,
    wait_for_commands,
    wait_for_metric,
)
from support import exit_status, state_dir

APP = "deployctl"
SCRIPT = "deploy/deployctl.py"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CREDENTIALS = ["--aws-access-key-id", KEY_ID, "--aws-secret-access-key", SECRET_KEY]


def _on(cli_env: dict[str, str], receiver: OtlpHttpReceiver) -> dict[str, str]:
    return sending_env(cli_env, receiver, DEPLOYCTL_TELEMETRY="1")


def _plan_from_output(stdout: bytes) -> tuple[int, int, int, int]:
    match = re.search(rb"\+(\d+) ~(\d+) -(\d+) functions, (\d+) bytes", stdout)
    assert match, stdout
    added, updated, removed, size = (int(g) for g in match.groups())
    return added, updated, removed, size


def test_deploy_event_phases_metrics_and_no_credentials(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = _on(cli_env, receiver)
        result = run_example(SCRIPT, ["deploy", "--stage", "prod", *CREDENTIALS], env)
        assert result.returncode == 0, result.stderr
        added, updated, removed, size = _plan_from_output(result.stdout)
        spans = receiver.wait_for_spans(4, timeout=20)
        points = {
            name: wait_for_metric(receiver, name)
            for name in (
                "deploy.bytes_uploaded",
                "deploy.functions.changed",
                "deploy.build.duration",
                "cli_telemetry.command.duration",
            )
        }
        finish(env, APP)

    command = only_command_span(spans)
    attributes = command["attributes"]
    assert command["name"] == "deployctl deploy"
    assert attributes["cli_telemetry.command"] == "deploy"
    assert attributes["process.exit.code"] == 0
    assert command["status_code"] == "UNSET"
    # the per-command event: workspace and stage counts
    assert attributes["workspace.projects"] == 2
    assert attributes["workspace.stages"] == 3
    # the deploy event
    assert attributes["deploy.functions.added"] == added
    assert attributes["deploy.functions.updated"] == updated
    assert attributes["deploy.functions.removed"] == removed
    assert attributes["deploy.infrastructure_changed"] is (added > 0 or removed > 0)
    assert sorted(attributes["cli_telemetry.flags"]) == [
        "--aws-access-key-id",
        "--aws-secret-access-key",
        "--stage",
    ]
    # build, upload and update durations: phases as child spans, in order
    phases = sorted((s for s in spans if s is not command), key=lambda s: s["start_ns"])
    assert [p["name"] for p in phases] == ["build", "upload", "update"]
    for phase in phases:
        assert phase["parent_span_id"] == command["span_id"]
        assert phase["trace_id"] == command["trace_id"]
        assert command["start_ns"] <= phase["start_ns"] <= phase["end_ns"] <= command["end_ns"]
    build = phases[0]
    assert build["end_ns"] - build["start_ns"] >= 10_000_000  # the build sleeps 10 ms
    # bytes uploaded, functions changed by kind, build duration, command duration
    assert sum(p["value"] for p in points["deploy.bytes_uploaded"]) == size
    changed = {
        p["attributes"]["deploy.change"]: p["value"] for p in points["deploy.functions.changed"]
    }
    assert changed == {
        kind: count
        for kind, count in (("added", added), ("updated", updated), ("removed", removed))
        if count
    }
    (build_point,) = points["deploy.build.duration"]
    assert build_point["count"] == 1
    assert build_point["sum"] >= 0.01
    (duration,) = points["cli_telemetry.command.duration"]
    assert duration["attributes"]["cli_telemetry.command"] == "deploy"
    assert duration["attributes"]["process.exit.code"] == 0
    # credentials typed on the command line never leave the machine, nor are stored
    assert_never_sent(receiver, KEY_ID, SECRET_KEY, "AKIA")
    assert_never_stored(env, APP, KEY_ID, SECRET_KEY)


def test_every_command_sends_its_event(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = _on(cli_env, receiver)
        for args in (["stage", "list"], ["stage", "new", "preview-secret-name"]):
            assert run_example(SCRIPT, args, env).returncode == 0
        spans = wait_for_commands(receiver, 2)
        finish(env, APP)
    by_command = {s["attributes"]["cli_telemetry.command"]: s for s in spans}
    assert set(by_command) == {"stage list", "stage new"}
    for span in by_command.values():
        assert span["attributes"]["workspace.projects"] == 2
        assert span["attributes"]["workspace.stages"] == 3
        assert span["resource"]["service.name"] == APP
        assert span["resource"]["service.version"] == "1.4.2"
    assert_never_sent(receiver, "preview-secret-name")


def test_quota_failure_is_recorded_without_its_message(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = _on(cli_env, receiver)
        result = run_example(SCRIPT, ["deploy", "--fail", "quota", *CREDENTIALS], env)
        assert exit_status(result.returncode) == 1
        assert b"QuotaExceededError" in result.stderr  # the traceback is the user's, as ever
        spans = receiver.wait_for_spans(3, timeout=20)
        finish(env, APP)
    command = only_command_span(spans)
    assert command["attributes"]["process.exit.code"] == 1
    assert command["attributes"]["error.type"] == "QuotaExceededError"
    assert command["status_code"] == "ERROR"
    phases = {s["name"]: s for s in spans if s is not command}
    assert set(phases) == {"build", "upload"}  # update never ran
    assert phases["upload"]["attributes"]["error.type"] == "QuotaExceededError"
    assert phases["upload"]["status_code"] == "ERROR"
    assert "error.type" not in phases["build"]["attributes"]
    assert_never_sent(receiver, KEY_ID, SECRET_KEY, "quota exceeded for account")


def test_usage_failure_inside_the_command(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = _on(cli_env, receiver)
        result = run_example(SCRIPT, ["deploy", "--fail", "usage"], env)
        assert exit_status(result.returncode) == 2
        spans = receiver.wait_for_spans(3, timeout=20)
        finish(env, APP)
    command = only_command_span(spans)
    assert command["attributes"]["process.exit.code"] == 2
    assert command["attributes"]["error.type"] == "usage_error"
    assert_never_sent(receiver, "must name an existing stage")


def test_env_var_opt_out_sends_and_stores_nothing(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = _on(cli_env, receiver)
        del env["DEPLOYCTL_TELEMETRY"]  # the app switch would win over the opt-out variable
        env["DEPLOYCTL_NO_EVENTS"] = "1"
        for args in (["deploy", *CREDENTIALS], ["stage", "list"]):
            result = run_example(SCRIPT, args, env)
            assert result.returncode == 0
            assert result.stderr == b""  # not even the first-run notice
        assert_nothing_sent(receiver, env, APP)
    assert not state_dir(env, APP).exists()  # nothing written at all


def test_first_run_notice_then_events(cli_env: dict[str, str]) -> None:
    """Default consent: the first run shows the notice and sends nothing; later runs send."""
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver)
        first = run_example(SCRIPT, ["stage", "list"], env)
        assert first.returncode == 0
        assert b"deployctl collects anonymous usage telemetry" in first.stderr
        assert b"DEPLOYCTL_TELEMETRY=0" in first.stderr
        assert_nothing_sent(receiver, env, APP, wait=0.5)
        second = run_example(SCRIPT, ["stage", "list"], env)
        assert second.returncode == 0
        assert second.stderr == b""
        (span,) = wait_for_commands(receiver, 1)
        finish(env, APP)
    assert span["attributes"]["cli_telemetry.command"] == "stage list"
