"""The detached drainer serves a burst of commands, then leaves.

Real CLI processes, real drainers, the OTLP/HTTP receiver on loopback. One drainer delivers
the records of several commands (each later command finds it alive and starts nothing);
it leaves once the spool stays empty for its linger time, leaving no process, no lock and
nothing in the spool; never two at once, even when commands run in parallel; and it leaves
early when the user disables telemetry or the endpoint fails.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from otel_cli_telemetry.delivery.lock import held_by_someone
from test_delivery_support import (
    admin,
    app_env,
    command_spans,
    delivery_log,
    drainer_pids,
    kill_drainers,
    spool_files,
    wait_until,
)

from otlp_receiver import OtlpHttpReceiver
from support import run_app, state_dir

APP = "clickapp"
LINGER = "OTEL_CLI_TELEMETRY_DRAINER_LINGER"


class DrainerWatch:
    """Samples the drainer processes of a state dir in a thread: every pid seen, and the
    most seen alive at once."""

    def __init__(self, root: object) -> None:
        self.root = root
        self.seen: set[int] = set()
        self.most_at_once = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = drainer_pids(self.root)  # type: ignore[arg-type]
            self.seen.update(pids)
            self.most_at_once = max(self.most_at_once, len(pids))
            time.sleep(0.01)

    def __enter__(self) -> DrainerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def exits(env: dict[str, str]) -> list[dict[str, object]]:
    return [e for e in delivery_log(env, APP) if e.get("outcome") == "exit"]


def test_one_drainer_serves_a_session_of_commands_then_leaves(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint, **{LINGER: "8"})
        root = state_dir(env, APP)
        try:
            with DrainerWatch(root) as watch:
                for n in range(5):
                    assert run_app("click_app.py", ["deploy"], env).returncode == 0
                    # each record is delivered while the drainer waits for the next command
                    assert wait_until(lambda n=n: len(command_spans(rx.spans(), APP)) == n + 1)
                    assert drainer_pids(root), "the drainer is still there, lingering"
                assert wait_until(lambda: not drainer_pids(root), timeout=30), "it left"
            assert len(watch.seen) == 1, f"one drainer for the session, saw {watch.seen}"
            assert not held_by_someone(str(root / "drainer.lock"))
            assert spool_files(env, APP) == []
            (exit_entry,) = exits(env)
            assert exit_entry["records"] == 5
            assert exit_entry["stopped"] == "empty"
            assert isinstance(exit_entry["cpu_ms_per_record"], float)
            spans = command_spans(rx.spans(), APP)
            assert len({s["span_id"] for s in spans}) == 5 == len(spans)
            doctor = admin(APP, ["doctor"], env).stdout.decode()
            assert "last drainer: 5 record(s) in" in doctor
            assert "ms per record" in doctor
        finally:
            kill_drainers(root)


def test_commands_in_parallel_never_see_two_drainers(cli_env: dict[str, str]) -> None:
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint, **{LINGER: "1"})
        root = state_dir(env, APP)
        try:
            with DrainerWatch(root) as watch, ThreadPoolExecutor(4) as pool:
                codes = list(
                    pool.map(
                        lambda _: run_app("click_app.py", ["deploy"], env).returncode, range(12)
                    )
                )
                assert codes == [0] * 12
                assert wait_until(lambda: len(command_spans(rx.spans(), APP)) >= 12, timeout=30)
                assert wait_until(lambda: not drainer_pids(root), timeout=30)
            assert watch.most_at_once == 1
            spans = command_spans(rx.spans(), APP)
            assert len({s["span_id"] for s in spans}) == 12, "every record, once"
            assert spool_files(env, APP) == []
        finally:
            kill_drainers(root)


def test_a_lingering_drainer_leaves_when_telemetry_is_disabled(cli_env: dict[str, str]) -> None:
    from otel_cli_telemetry.delivery.drainer import CONSENT_DENIED
    from otel_cli_telemetry.gate.state import DENIED

    assert CONSENT_DENIED == DENIED
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint, **{LINGER: "120"})
        root = state_dir(env, APP)
        try:
            assert run_app("click_app.py", ["deploy"], env).returncode == 0
            assert wait_until(lambda: len(command_spans(rx.spans(), APP)) == 1)
            assert drainer_pids(root)
            result = admin(APP, ["disable"], {**env, f"{APP.upper()}_TELEMETRY": ""})
            assert result.returncode == 0, result.stderr
            # far sooner than its 120 s linger: it watches the state file
            assert wait_until(lambda: not drainer_pids(root), timeout=20)
            assert any(e.get("outcome") == "disabled" for e in delivery_log(env, APP))
        finally:
            kill_drainers(root)


def test_a_lingering_drainer_leaves_when_the_endpoint_fails(cli_env: dict[str, str]) -> None:
    """A failure opens the breaker; the drainer does not stay around to retry."""
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint, **{LINGER: "120"})
        root = state_dir(env, APP)
        try:
            assert run_app("click_app.py", ["deploy"], env).returncode == 0
            assert wait_until(lambda: len(command_spans(rx.spans(), APP)) == 1)
            # The record is gone once its metrics were accepted too (spans go first): only
            # then may the endpoint fail, or the first record's metrics fail with it.
            assert wait_until(lambda: not spool_files(env, APP))
            rx.set_mode("status", status=503)
            assert run_app("click_app.py", ["deploy"], env).returncode == 0
            assert wait_until(lambda: not drainer_pids(root), timeout=20)
            assert len(spool_files(env, APP)) == 1, "kept for later (at-least-once)"
            (exit_entry,) = exits(env)
            assert exit_entry["stopped"] == "failed"
        finally:
            kill_drainers(root)


def test_flush_does_not_wait_for_a_lingering_drainer(cli_env: dict[str, str]) -> None:
    """The drainer holds the lock while it lingers; ``flush`` is done once the spool is."""
    with OtlpHttpReceiver() as rx:
        env = app_env(cli_env, APP, rx.endpoint, **{LINGER: "120"})
        root = state_dir(env, APP)
        try:
            assert run_app("click_app.py", ["deploy"], env).returncode == 0
            assert wait_until(lambda: len(command_spans(rx.spans(), APP)) == 1)
            assert drainer_pids(root), "lingering"
            assert run_app("click_app.py", ["deploy"], env).returncode == 0  # spooled
            result = admin(APP, ["flush", "--timeout", "100"], env, timeout=60)
            assert result.returncode == 0, result
            assert result.stdout in (
                b"The running drainer delivered everything; 0 waiting.\n",
                b"Nothing to deliver.\n",
            )
            assert spool_files(env, APP) == []
            assert len(command_spans(rx.spans(), APP)) == 2
        finally:
            kill_drainers(root)
