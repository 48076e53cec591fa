"""Seed 002 (cecli's analytics policy), end to end with examples/cecli/pairprog.py.

Opt-in at a prompt shown to a random share of installations; ``--analytics``,
``--no-analytics``, ``--analytics-disable`` (permanent: ``--analytics`` then has no effect),
``--analytics-log FILE`` (also with ``--no-analytics``: logged, never sent); a custom endpoint
and headers; model and token counts; exceptions. Never code, chat messages, keys or personal
info. The prompt needs a terminal: those tests run the CLI on a pseudo-terminal.
"""

from __future__ import annotations

import json
from pathlib import Path

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
from support import exit_status, state_dir

APP = "pairprog"
SCRIPT = "cecli/pairprog.py"
PROMPT = b"[y/N]"
IN_SHARE = "00000000-0000-4000-8000-000000000000"  # first 8 hex digits: 0 / 2**32 < 0.1
OUT_OF_SHARE = "ffffffff-ffff-4fff-bfff-ffffffffffff"
MESSAGE = "please refactor the billing module for ACME-CONFIDENTIAL"


def _installation(env: dict[str, str], install_id: str) -> None:
    root = state_dir(env, APP)
    root.mkdir(parents=True, exist_ok=True)
    (root / "installation_id").write_text(install_id + "\n")


def _on_pty(env: dict[str, str], *args: str, answer: str | None = None) -> tuple[int, bytes]:
    return run_on_pty(python_argv(SCRIPT, *args), env, answer=answer, prompt=PROMPT)


def _opt_in(cli_env: dict[str, str]) -> None:
    """Say yes once, with no endpoint configured (that run is kept on this machine)."""
    code, output = _on_pty(cli_env, "--analytics", "-m", "hi", answer="y")
    assert code == 0, output
    assert PROMPT in output


def test_a_random_share_is_asked_and_yes_opts_in(cli_env: dict[str, str]) -> None:
    _installation(cli_env, IN_SHARE)
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver)
        code, output = _on_pty(env, "-m", MESSAGE, "--model", "claude-sonnet-4", answer="y")
        assert code == 0, output
        assert b"never collects your code, prompts, chats, keys" in output
        assert PROMPT in output
        (span,) = wait_for_commands(receiver, 1)
        points = wait_for_metric(receiver, "gen_ai.client.token.usage")
        # the answer persists: the next run, without a terminal, sends too, asking nothing
        again = run_example(SCRIPT, ["-m", "again"], env)
        assert again.returncode == 0
        assert PROMPT not in again.stderr
        wait_for_commands(receiver, 2)
        finish(env, APP)
    assert span["attributes"]["gen_ai.request.model"] == "claude-sonnet-4"
    assert span["attributes"]["pairprog.edit_format"] == "diff"
    assert span["resource"]["service.instance.id"] == IN_SHARE
    by_type = {p["attributes"]["gen_ai.token.type"]: p for p in points}
    assert set(by_type) == {"input", "output"}
    assert by_type["output"]["sum"] == 42
    assert all(p["attributes"]["gen_ai.request.model"] == "claude-sonnet-4" for p in points)
    assert_never_sent(receiver, MESSAGE, "ACME")


def test_installations_outside_the_share_are_never_asked(cli_env: dict[str, str]) -> None:
    _installation(cli_env, OUT_OF_SHARE)
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver)
        code, output = _on_pty(env, "-m", "hi")
        assert code == 0
        assert PROMPT not in output
        assert_nothing_sent(receiver, env, APP)


def test_no_at_the_prompt_is_permanent(cli_env: dict[str, str]) -> None:
    _installation(cli_env, IN_SHARE)
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver)
        code, output = _on_pty(env, "-m", "hi", answer="n")
        assert code == 0
        assert PROMPT in output
        code, output = _on_pty(env, "--analytics", "-m", "hi")
        assert code == 0
        assert PROMPT not in output
        assert b"--analytics has no effect" in output
        assert_nothing_sent(receiver, env, APP)


def test_analytics_flag_asks_first_time_even_outside_the_share(cli_env: dict[str, str]) -> None:
    _installation(cli_env, OUT_OF_SHARE)
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver)
        code, output = _on_pty(env, "--analytics", "-m", "hi", answer="y")
        assert code == 0
        assert PROMPT in output
        (span,) = wait_for_commands(receiver, 1)
        finish(env, APP)
    assert span["attributes"]["cli_telemetry.command"] == APP


def test_analytics_without_a_terminal_does_not_opt_in(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver)
        result = run_example(SCRIPT, ["--analytics", "-m", "hi"], env)
        assert result.returncode == 0
        assert PROMPT not in result.stderr
        assert_nothing_sent(receiver, env, APP)


def test_analytics_disable_is_permanent(cli_env: dict[str, str]) -> None:
    _opt_in(cli_env)
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver)
        result = run_example(SCRIPT, ["--analytics-disable"], env)
        assert result.returncode == 0
        assert b"permanently disabled" in result.stderr
        code, output = _on_pty(env, "--analytics", "-m", "hi")
        assert code == 0
        assert PROMPT not in output
        assert b"--analytics has no effect" in output
        assert run_example(SCRIPT, ["-m", "hi"], env).returncode == 0
        assert_nothing_sent(receiver, env, APP)


def test_no_analytics_turns_it_off_for_the_session(cli_env: dict[str, str]) -> None:
    _opt_in(cli_env)
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver)
        assert run_example(SCRIPT, ["--no-analytics", "-m", "hi"], env).returncode == 0
        assert_nothing_sent(receiver, env, APP)
        assert run_example(SCRIPT, ["-m", "hi"], env).returncode == 0  # next session: on
        wait_for_commands(receiver, 1)
        finish(env, APP)


def test_analytics_log_with_no_analytics_logs_without_sending(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "analytics.jsonl"
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver)
        args = ["--analytics-log", str(log), "--no-analytics", "-m", MESSAGE]
        assert run_example(SCRIPT, args, env).returncode == 0
        assert_nothing_sent(receiver, env, APP)
    (event,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert event["attributes"]["gen_ai.request.model"] == "gpt-4o"
    (metric,) = event["metrics"]
    assert metric["name"] == "gen_ai.client.token.usage"
    assert MESSAGE not in log.read_text()


def test_analytics_log_while_sending(cli_env: dict[str, str], tmp_path: Path) -> None:
    _opt_in(cli_env)
    log = tmp_path / "analytics.jsonl"
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver)
        assert run_example(SCRIPT, ["--analytics-log", str(log), "-m", "hi"], env).returncode == 0
        (span,) = wait_for_commands(receiver, 1)
        finish(env, APP)
    (event,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert event["trace_id"] == span["trace_id"]
    assert event["span_id"] == span["span_id"]


def test_custom_endpoint_and_headers(cli_env: dict[str, str]) -> None:
    _opt_in(cli_env)
    with OtlpHttpReceiver() as receiver:
        args = [
            "--analytics-endpoint",
            receiver.endpoint,
            "--analytics-header",
            "x-project-key=phc_project123",
            "-m",
            "hi",
        ]
        assert run_example(SCRIPT, args, cli_env).returncode == 0  # no OTEL_* variable at all
        (span,) = wait_for_commands(receiver, 1)
        finish(cli_env, APP)
    for request in receiver.requests:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert headers.get("x-project-key") == "phc_project123"
    assert span["resource"]["service.name"] == APP
    for request in receiver.requests:  # the key is a header for the endpoint, not data
        assert b"phc_project123" not in request.body


def test_exceptions_as_error_type_and_private_models(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    _opt_in(cli_env)
    code_file = tmp_path / "billing.py"
    code_file.write_text("API_KEY = 'sk-live-0123456789abcdef0123456789'\ndef charge(): ...\n")
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver, OPENAI_API_KEY="sk-proj-envsecret0123456789abcd")
        args = [str(code_file), "--model", "acme-internal-ft", "--simulate-error", "timeout"]
        result = run_example(SCRIPT, [*args, "-m", MESSAGE], env)
        assert exit_status(result.returncode) == 1
        assert b"ModelTimeoutError" in result.stderr
        spans = receiver.wait_for_spans(2)
        finish(env, APP)
    (span,) = [s for s in spans if s["name"] == APP]
    assert span["attributes"]["error.type"] == "ModelTimeoutError"
    assert span["attributes"]["process.exit.code"] == 1
    assert span["attributes"]["gen_ai.request.model"] == "other"
    (phase,) = [s for s in spans if s["name"] == "llm.request"]
    assert phase["attributes"]["error.type"] == "ModelTimeoutError"
    assert_never_sent(
        receiver,
        MESSAGE,
        "acme-internal-ft",
        "timed out answering",
        "sk-live-0123456789abcdef",
        "def charge",
        "billing.py",
        str(tmp_path),
        "sk-proj-envsecret",
    )
