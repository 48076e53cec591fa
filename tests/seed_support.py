"""Helpers shared by the seed-reproduction tests (``test_seed_*.py``, ``test_example_deploy.py``).

Each seed test runs an example CLI from ``examples/`` as a real process, delivering to a real
OTLP/HTTP receiver on loopback, and checks both what its policy promises to collect and what
it promises never to collect (searched for in every byte the receiver got).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from otlp_receiver import OtlpReceiverBase
from support import ROOT, exit_status, run_app, state_dir, wait_for_drainer

EXAMPLES = ROOT / "examples"


def example(relative: str) -> Path:
    """The absolute path of an example script (``"cecli/pairprog.py"``)."""
    return EXAMPLES / relative


def run_example(
    relative: str, args: list[str], env: dict[str, str], **kwargs: Any
) -> subprocess.CompletedProcess[bytes]:
    """Run an example CLI as a real process (see ``conftest.run_app``)."""
    return run_app(example(relative), args, env, **kwargs)


def sending_env(
    cli_env: dict[str, str], receiver: OtlpReceiverBase, **extra: str
) -> dict[str, str]:
    """``cli_env`` pointed at ``receiver``."""
    return {**cli_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, **extra}


def command_spans(spans: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The command spans (those carrying ``cli_telemetry.command``), without the phases."""
    return [s for s in spans if "cli_telemetry.command" in s["attributes"]]


def only_command_span(spans: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The one command span among ``spans``."""
    found = command_spans(spans)
    assert len(found) == 1, f"expected one command span, got {[s['name'] for s in found]}"
    return found[0]


def wait_for_commands(
    receiver: OtlpReceiverBase, n: int, timeout: float = 20
) -> list[dict[str, Any]]:
    """Wait until ``n`` command spans arrived; return all of them (in arrival order)."""
    deadline = time.monotonic() + timeout
    while True:
        found = command_spans(receiver.spans())
        if len(found) >= n or time.monotonic() > deadline:
            assert len(found) >= n, f"waited {timeout}s for {n} command spans, got {found}"
            return found
        time.sleep(0.05)


def wait_for_metric(
    receiver: OtlpReceiverBase, name: str, timeout: float = 20
) -> list[dict[str, Any]]:
    """All points of metric ``name`` once at least one arrived."""
    receiver.wait_for_metrics(lambda ms: any(m["name"] == name for m in ms), timeout=timeout)
    return receiver.points(name)


def assert_never_sent(receiver: OtlpReceiverBase, *needles: str | bytes) -> None:
    """None of ``needles`` occurs in any byte the receiver was sent (bodies and headers)."""
    for request in receiver.requests:
        blob = request.body + repr(request.headers).encode()
        for needle in needles:
            raw = needle.encode() if isinstance(needle, str) else needle
            assert raw not in blob, f"{needle!r} reached the receiver ({request.path})"


def assert_never_stored(env: dict[str, str], app: str, *needles: str) -> None:
    """None of ``needles`` occurs in any file the SDK wrote for ``app`` (spool, history...)."""
    root = state_dir(env, app)
    for path in root.rglob("*") if root.exists() else ():
        if path.is_file():
            data = path.read_bytes()
            for needle in needles:
                assert needle.encode() not in data, f"{needle!r} stored in {path}"


def spooled(env: dict[str, str], app: str, root: Path | None = None) -> list[Path]:
    """Records waiting in the app's spool."""
    spool = (root or state_dir(env, app)) / "spool"
    return sorted(spool.iterdir()) if spool.exists() else []


def assert_nothing_sent(
    receiver: OtlpReceiverBase,
    env: dict[str, str],
    app: str,
    wait: float = 1.5,
    root: Path | None = None,
) -> None:
    """Nothing arrives within ``wait`` seconds, and nothing waits in the spool to be sent."""
    finish(env, app, root)
    time.sleep(wait)
    assert receiver.requests == [], "something was sent"
    assert spooled(env, app, root) == []


def finish(env: dict[str, str], app: str, root: Path | None = None, timeout: float = 20) -> None:
    """Let the app's drainer end (so the test's temporary dirs can go).

    ``root``: the app's state dir when it is not the default one (``init(state_dir=...)``).
    """
    if root is None:
        wait_for_drainer(env, app, timeout)
        return
    from otel_cli_telemetry.delivery.lock import held_by_someone

    deadline = time.time() + timeout
    while time.time() < deadline and held_by_someone(str(root / "drainer.lock")):
        time.sleep(0.05)


def run_on_pty(
    argv: list[str],
    env: dict[str, str],
    *,
    answer: str | None = None,
    prompt: bytes = b"[y/N]",
    timeout: float = 30,
) -> tuple[int, bytes]:
    """Run ``argv`` with a terminal as stdin, stdout and stderr (a pseudo-terminal).

    When ``answer`` is given, it is typed (with Enter) as soon as ``prompt`` is shown.
    Returns (exit status, everything the program wrote to the terminal).
    """
    import pty

    master, slave = pty.openpty()
    process = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
    )
    os.close(slave)
    output = b""
    answered = answer is None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk and process.poll() is not None:
                    break
                output += chunk
            if not answered and prompt in output:
                os.write(master, (answer or "").encode() + b"\n")
                answered = True
            if not ready and process.poll() is not None:
                break
        code = process.wait(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return exit_status(code), output


def python_argv(relative: str, *args: str) -> list[str]:
    """``[python, examples/<relative>, *args]``."""
    return [sys.executable, str(example(relative)), *args]
