"""Consent, as real processes: the one-time notice, the prompt on a real terminal, the asked
share, and every transition between consent states.

``consent_app.py`` is a click app whose consent mode comes from the environment. What was
recorded is read from the app's local history (written only when consent allows sending),
and for the notice run also at a real OTLP receiver.
"""

from __future__ import annotations

import time
import uuid

from otel_cli_telemetry.config import in_ask_share

from apps._harness import app_state_dir, drainer_pids, files_under, history, run_in_pty, state
from otlp_receiver import OtlpHttpReceiver
from support import run_app, wait_for_drainer

APP = "consentapp"
SCRIPT = "consent_app.py"
NOTICE_START = f"{APP} collects anonymous usage telemetry"


def _ask_env(cli_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**cli_env, "CONSENT": "ask", "TERM": "dumb", **extra}


# --- consent="notice" ---------------------------------------------------------------------


def test_notice_once_on_stderr_nothing_sent_that_run(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = {**cli_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        first = run_app(SCRIPT, ["run"], env)
        assert first.returncode == 0
        assert first.stdout == b"ran 1\n"  # the notice never touches stdout
        assert first.stderr.decode().startswith(NOTICE_START)
        assert f"{APP} telemetry disable" in first.stderr.decode()
        assert "CONSENTAPP_TELEMETRY=0" in first.stderr.decode()
        root = app_state_dir(env, APP)
        # Nothing recorded, spooled, or spawned on the notice run: only the state file.
        assert {p.name for p in files_under(root)} == {"state.json", "schema.json"}
        assert drainer_pids(root) == []
        time.sleep(0.5)
        assert receiver.requests == []

        second = run_app(SCRIPT, ["run"], env)
        assert (second.returncode, second.stdout, second.stderr) == (0, b"ran 1\n", b"")
        spans = receiver.wait_for_spans(2)
        wait_for_drainer(env, APP)
    assert {s["name"] for s in spans} == {f"{APP} run", "work"}
    assert len(history(env, APP)) == 1


def test_notice_shown_again_when_declared_fields_change(cli_env: dict[str, str]) -> None:
    run_app(SCRIPT, ["run"], cli_env)
    run_app(SCRIPT, ["run"], cli_env)
    assert len(history(cli_env, APP)) == 1
    first_version = state(cli_env, APP)["notice_schema"]

    changed = {**cli_env, "EXTRA_FIELD": "1"}
    again = run_app(SCRIPT, ["run"], changed)
    assert again.stderr.decode().startswith(NOTICE_START)
    assert again.stdout == b"ran 1\n"
    assert len(history(cli_env, APP)) == 1  # nothing recorded on the re-notice run
    assert state(cli_env, APP)["notice_schema"] != first_version

    after = run_app(SCRIPT, ["run"], changed)
    assert after.stderr == b""
    records = history(cli_env, APP)
    assert len(records) == 2
    assert (
        records[-1]["resource"]["cli_telemetry.schema.version"]
        == state(cli_env, APP)["notice_schema"]
    )


def test_telemetry_command_is_not_preceded_by_the_notice(cli_env: dict[str, str]) -> None:
    status = run_app(SCRIPT, ["telemetry", "status"], cli_env)
    assert status.returncode == 0
    assert status.stderr == b""
    assert "off until the notice has been shown" in status.stdout.decode()
    assert run_app(SCRIPT, ["run"], cli_env).stderr.decode().startswith(NOTICE_START)


def test_notice_not_shown_when_telemetry_is_off(cli_env: dict[str, str]) -> None:
    for env in ({"CONSENTAPP_TELEMETRY": "0"}, {"DO_NOT_TRACK": "1"}, {"CI": "true"}):
        result = run_app(SCRIPT, ["run"], {**cli_env, **env})
        assert (result.returncode, result.stdout, result.stderr) == (0, b"ran 1\n", b"")


# --- consent="ask", on a real terminal ------------------------------------------------------


def test_ask_yes_on_a_terminal_persists(cli_env: dict[str, str]) -> None:
    env = _ask_env(cli_env)
    code, output = run_in_pty(SCRIPT, ["run"], env, answer="y\n")
    assert code == 0
    assert f"Allow {APP} to send anonymous usage telemetry? [y/N]" in output
    assert "ran 1" in output
    saved = state(env, APP)
    assert (saved["consent"], saved["consent_source"]) == ("granted", "prompt")
    assert len(history(env, APP)) == 1  # the user said yes: this run counts

    code, output = run_in_pty(SCRIPT, ["run"], env)
    assert code == 0
    assert "[y/N]" not in output
    assert len(history(env, APP)) == 2
    status = run_app(SCRIPT, ["telemetry", "status"], env).stdout.decode()
    assert "is on" in status
    assert "decided by: state file: accepted at the prompt" in status


def test_ask_no_persists_and_records_nothing(cli_env: dict[str, str]) -> None:
    env = _ask_env(cli_env)
    code, output = run_in_pty(SCRIPT, ["run"], env, answer="n\n")
    assert (code, "ran 1" in output) == (0, True)
    assert state(env, APP)["consent"] == "denied"
    code, output = run_in_pty(SCRIPT, ["run"], env)
    assert "[y/N]" not in output
    assert history(env, APP) == []
    assert not (app_state_dir(env, APP) / "spool").exists()
    status = run_app(SCRIPT, ["telemetry", "status"], env).stdout.decode()
    assert "decided by: state file: declined at the prompt" in status


def test_ask_enter_means_no(cli_env: dict[str, str]) -> None:
    env = _ask_env(cli_env)
    run_in_pty(SCRIPT, ["run"], env, answer="\n")
    assert state(env, APP)["consent"] == "denied"


def test_ask_end_of_input_is_no_for_this_run_only(cli_env: dict[str, str]) -> None:
    env = _ask_env(cli_env)
    code, output = run_in_pty(SCRIPT, ["run"], env)  # Ctrl-D at the prompt
    assert (code, "[y/N]" in output, "ran 1" in output) == (0, True, True)
    assert "consent" not in state(env, APP)
    assert history(env, APP) == []
    _, output = run_in_pty(SCRIPT, ["run"], env, answer="y\n")
    assert "[y/N]" in output  # asked again
    assert state(env, APP)["consent"] == "granted"


def test_ask_again_after_a_yes_when_fields_change_but_a_no_stays(cli_env: dict[str, str]) -> None:
    yes_env = _ask_env(cli_env)
    run_in_pty(SCRIPT, ["run"], yes_env, answer="y\n")
    _, output = run_in_pty(SCRIPT, ["run"], {**yes_env, "EXTRA_FIELD": "1"}, answer="y\n")
    assert "[y/N]" in output

    no_env = {**_ask_env(cli_env), "XDG_STATE_HOME": cli_env["XDG_STATE_HOME"] + "-no"}
    run_in_pty(SCRIPT, ["run"], no_env, answer="n\n")
    _, output = run_in_pty(SCRIPT, ["run"], {**no_env, "EXTRA_FIELD": "1"})
    assert "[y/N]" not in output


def test_ask_without_a_terminal_is_no_and_not_persisted(cli_env: dict[str, str]) -> None:
    env = _ask_env(cli_env)
    result = run_app(SCRIPT, ["run"], env, stdin="y\n")  # pipes, not a terminal
    assert (result.returncode, result.stdout, result.stderr) == (0, b"ran 1\n", b"")
    assert files_under(app_state_dir(env, APP)) == []  # nothing recorded, nothing persisted


def test_ask_never_in_ci_even_on_a_terminal(cli_env: dict[str, str]) -> None:
    for ci in ({"CI": "true"}, {"GITHUB_ACTIONS": "true"}, {"GITLAB_CI": "true"}):
        env = _ask_env(cli_env, **ci)
        code, output = run_in_pty(SCRIPT, ["run"], env)
        assert (code, "[y/N]" in output, "ran 1" in output) == (0, False, True)
        assert files_under(app_state_dir(env, APP)) == []


# --- ask_share: a deterministic share of installations is asked ----------------------------


def _with_installation_id(env: dict[str, str], value: str) -> None:
    root = app_state_dir(env, APP)
    root.mkdir(parents=True, exist_ok=True)
    (root / "installation_id").write_text(value + "\n")


def test_ask_share_asks_only_installations_in_the_share(cli_env: dict[str, str]) -> None:
    inside = {**_ask_env(cli_env, ASK_SHARE="0.1")}
    _with_installation_id(inside, "0a000000-0000-4000-8000-000000000000")  # 0x0a/0xff < 10%
    _, output = run_in_pty(SCRIPT, ["run"], inside, answer="y\n")
    assert "[y/N]" in output

    outside = {**inside, "XDG_STATE_HOME": cli_env["XDG_STATE_HOME"] + "-out"}
    _with_installation_id(outside, "f0000000-0000-4000-8000-000000000000")
    code, output = run_in_pty(SCRIPT, ["run"], outside)
    assert (code, "[y/N]" in output, "ran 1" in output) == (0, False, True)
    assert "consent" not in state(outside, APP)
    assert history(outside, APP) == []
    status = run_app(SCRIPT, ["telemetry", "status"], outside).stdout.decode()
    assert "is off" in status
    code, output = run_in_pty(SCRIPT, ["run"], outside)
    assert "[y/N]" not in output  # the same installation stays out


def test_ask_share_is_deterministic_and_about_the_share() -> None:
    ids = [str(uuid.uuid4()) for _ in range(20_000)]
    asked = sum(in_ask_share(i, 0.1) for i in ids)
    assert 0.08 < asked / len(ids) < 0.12
    assert all(in_ask_share(i, 0.1) == in_ask_share(i, 0.1) for i in ids[:100])
    assert not any(in_ask_share(i, 0.0) for i in ids[:1000])


def test_ask_share_creates_the_id_only_when_it_would_ask(cli_env: dict[str, str]) -> None:
    """An opted-out or non-interactive run must not create the installation id."""
    for extra in ({"DO_NOT_TRACK": "1"}, {}):
        env = _ask_env(cli_env, ASK_SHARE="0.1", **extra)
        run_app(SCRIPT, ["run"], env)  # no terminal
        assert files_under(app_state_dir(env, APP)) == []


# --- transitions between consent states ------------------------------------------------------


def test_transitions_notice_disable_enable(cli_env: dict[str, str]) -> None:
    env = cli_env
    steps = [
        (["run"], 0, "notice run"),
        (["run"], 1, "on after the notice"),
        (["telemetry", "disable"], 1, "disable"),
        (["run"], 1, "off"),
        (["--telemetry", "run"], 2, "per-run on wins over the state file"),
        (["telemetry", "enable"], 2, "enable"),
        (["run"], 3, "on"),
        (["--no-telemetry", "run"], 3, "per-run off"),
        (["run"], 4, "on again"),
    ]
    for args, expected_records, label in steps:
        result = run_app(SCRIPT, args, env)
        assert result.returncode == 0, (label, result.stderr)
        assert len(history(env, APP)) == expected_records, label
    assert state(env, APP)["consent"] == "granted"


def test_enable_before_the_first_run_skips_the_notice(cli_env: dict[str, str]) -> None:
    out = run_app(SCRIPT, ["telemetry", "enable"], cli_env)
    assert out.returncode == 0
    assert "Telemetry is now on" in out.stdout.decode()
    first = run_app(SCRIPT, ["run"], cli_env)
    assert first.stderr == b""
    assert len(history(cli_env, APP)) == 1


def test_transitions_ask_declined_then_enabled_then_disabled(cli_env: dict[str, str]) -> None:
    env = _ask_env(cli_env)
    run_in_pty(SCRIPT, ["run"], env, answer="n\n")
    assert state(env, APP)["consent"] == "denied"
    run_app(SCRIPT, ["telemetry", "enable"], env)
    _, output = run_in_pty(SCRIPT, ["run"], env)
    assert "[y/N]" not in output
    assert len(history(env, APP)) == 1
    run_app(SCRIPT, ["telemetry", "disable"], env)
    run_in_pty(SCRIPT, ["run"], env)
    assert len(history(env, APP)) == 1
    assert (state(env, APP)["consent"], state(env, APP)["consent_source"]) == (
        "denied",
        "command",
    )
