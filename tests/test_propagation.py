"""W3C trace context across processes: ``TRACEPARENT``/``TRACESTATE`` in, ``subprocess_env()`` out.

- A CLI given ``TRACEPARENT`` records its command span as a child of that span (click and
  argparse, as real processes); an invalid one starts a new trace.
- A CLI that runs another one inside ``phase("child")`` with ``env=subprocess_env()``: both
  command spans arrive in one trace, the child's parent being the phase span.
- ``TRACESTATE`` travels with the trace it belongs to, and is never recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import otel_cli_telemetry as telemetry
from otel_cli_telemetry.testing import capture_telemetry

from otlp_receiver import OtlpHttpReceiver
from seed_support import (
    assert_never_sent,
    finish,
    run_example,
    sending_env,
    wait_for_commands,
)
from support import exit_status

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"
TRACESTATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"

CLIS = {
    "click": ("propagation/releasectl.py", "releasectl", ["release"]),
    "argparse": ("propagation/publishtool.py", "publishtool", ["publish"]),
}


@pytest.mark.parametrize("framework", sorted(CLIS))
def test_traceparent_makes_the_command_span_a_child(
    cli_env: dict[str, str], framework: str
) -> None:
    script, app, args = CLIS[framework]
    with OtlpHttpReceiver() as receiver:
        switches = {"RELEASECTL_TELEMETRY": "0", "PUBLISHTOOL_TELEMETRY": "0"}
        switches[f"{app.upper()}_TELEMETRY"] = "1"  # only the app under test records
        env = sending_env(
            cli_env, receiver, TRACEPARENT=TRACEPARENT, TRACESTATE=TRACESTATE, **switches
        )
        assert run_example(script, args, env).returncode == 0
        (span,) = wait_for_commands(receiver, 1)
        finish(env, app)
    assert span["trace_id"] == TRACE_ID
    assert span["parent_span_id"] == SPAN_ID
    assert span["span_id"] != SPAN_ID
    assert_never_sent(receiver, "t61rcWkgMzE")  # tracestate is passed on, never recorded


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        f"00-{'0' * 32}-{SPAN_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero span id
        f"ff-{TRACE_ID}-{SPAN_ID}-01",  # unknown version
    ],
    ids=["garbage", "zero-trace", "zero-span", "version-ff"],
)
def test_an_invalid_traceparent_starts_a_new_trace(cli_env: dict[str, str], value: str) -> None:
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver, PUBLISHTOOL_TELEMETRY="1", TRACEPARENT=value)
        assert run_example("propagation/publishtool.py", ["publish"], env).returncode == 0
        (span,) = wait_for_commands(receiver, 1)
        finish(env, "publishtool")
    assert span["parent_span_id"] == ""
    assert span["trace_id"] not in (TRACE_ID, "0" * 32)


@pytest.mark.parametrize("fail", [False, True], ids=["ok", "child-fails"])
def test_a_child_cli_run_in_a_phase_joins_the_parent_trace(
    cli_env: dict[str, str], fail: bool
) -> None:
    with OtlpHttpReceiver() as receiver:
        env = sending_env(cli_env, receiver, RELEASECTL_TELEMETRY="1", PUBLISHTOOL_TELEMETRY="1")
        args = ["release", *(["--fail-child"] if fail else [])]
        result = run_example("propagation/releasectl.py", args, env)
        assert exit_status(result.returncode) == (4 if fail else 0), result.stderr
        commands = wait_for_commands(receiver, 2)
        receiver.wait_for_spans(5)  # 2 commands + the tag, child and upload phases
        finish(env, "releasectl")
        finish(env, "publishtool")
    spans = receiver.spans()
    parent = next(s for s in commands if s["resource"]["service.name"] == "releasectl")
    child = next(s for s in commands if s["resource"]["service.name"] == "publishtool")
    phases = {s["name"]: s for s in spans if "cli_telemetry.command" not in s["attributes"]}
    assert set(phases) == {"tag", "child", "upload"}
    assert parent["parent_span_id"] == ""
    assert phases["child"]["parent_span_id"] == parent["span_id"]
    assert child["parent_span_id"] == phases["child"]["span_id"]
    assert phases["upload"]["parent_span_id"] == child["span_id"]
    assert {s["trace_id"] for s in spans} == {parent["trace_id"]}
    assert child["attributes"]["process.exit.code"] == (4 if fail else 0)
    assert parent["attributes"]["process.exit.code"] == (4 if fail else 0)


def test_the_whole_tree_joins_an_upstream_trace(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as receiver:
        env = sending_env(
            cli_env,
            receiver,
            RELEASECTL_TELEMETRY="1",
            PUBLISHTOOL_TELEMETRY="1",
            TRACEPARENT=TRACEPARENT,
            TRACESTATE=TRACESTATE,
        )
        assert run_example("propagation/releasectl.py", ["release"], env).returncode == 0
        wait_for_commands(receiver, 2)
        spans = receiver.wait_for_spans(5)
        finish(env, "releasectl")
        finish(env, "publishtool")
    assert {s["trace_id"] for s in spans} == {TRACE_ID}
    parent = next(s for s in spans if s["name"] == "releasectl release")
    assert parent["parent_span_id"] == SPAN_ID


# -- subprocess_env() in-process ------------------------------------------------------------


def test_subprocess_env_points_at_the_innermost_phase(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRACEPARENT", TRACEPARENT)
    monkeypatch.setenv("TRACESTATE", TRACESTATE)
    telemetry.init(app="proptest", enabled=True, state_dir=str(tmp_path / "state"))
    with capture_telemetry() as captured, telemetry.command("ship"):
        outside = telemetry.subprocess_env()
        with telemetry.phase("outer"), telemetry.phase("inner"):
            inside = telemetry.subprocess_env({"PATH": "/bin"})
    (record,) = captured.records
    inner = next(p for p in record["phases"] if p["name"] == "inner")
    assert record["trace_id"] == TRACE_ID
    assert outside["TRACEPARENT"] == f"00-{TRACE_ID}-{record['span_id']}-01"
    assert inside["TRACEPARENT"] == f"00-{TRACE_ID}-{inner['span_id']}-01"
    assert outside["TRACESTATE"] == TRACESTATE  # same trace: carried unchanged
    assert inside["TRACESTATE"] == TRACESTATE  # even into a base that lacked it
    assert inside["PATH"] == "/bin"


def test_subprocess_env_drops_a_tracestate_of_another_trace(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRACESTATE", TRACESTATE)  # stale: no TRACEPARENT came with it
    telemetry.init(app="proptest", enabled=True, state_dir=str(tmp_path / "state"))
    with capture_telemetry(), telemetry.command("ship"):
        env = telemetry.subprocess_env()
    assert "TRACESTATE" not in env
    assert env["TRACEPARENT"].startswith("00-")


def test_subprocess_env_with_telemetry_off_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRACEPARENT", TRACEPARENT)
    monkeypatch.setenv("TRACESTATE", TRACESTATE)
    telemetry.init(app="proptest", enabled=False, state_dir=str(tmp_path / "state"))
    with telemetry.command("ship"):
        env = telemetry.subprocess_env()
    assert env["TRACEPARENT"] == TRACEPARENT  # passed through as given: the trace goes on
    assert env["TRACESTATE"] == TRACESTATE
