"""Shared by the test apps: what each scenario does inside a command.

``WITH_TELEMETRY=0`` runs an app without calling ``init()`` at all: the baseline its output
and exit code must match byte for byte.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def maybe_init(app: str) -> None:
    if os.environ.get("WITH_TELEMETRY", "1") == "1":
        import otel_cli_telemetry as telemetry

        telemetry.init(
            app=app,
            version="0.0.1",
            fields={
                "app.items": telemetry.Integer("items processed"),
                "app.note": telemetry.Text("a free-text note"),
            },
        )


def act(behaviour: str) -> None:
    """Do what the scenario asks, after printing on both streams."""
    print(f"doing {behaviour}")
    print(f"warning: {behaviour}", file=sys.stderr)
    if os.environ.get("WITH_TELEMETRY", "1") == "1":
        import otel_cli_telemetry as telemetry

        with telemetry.phase("work"):
            telemetry.set_attributes({"app.items": 3, "undeclared.key": "dropped"})
            telemetry.counter("app.items.processed", unit="{item}").add(3)
    if behaviour == "ok":
        return
    if behaviour.startswith("exit"):
        sys.exit(int(behaviour[4:]))
    if behaviour == "raise":
        raise ValueError("secret message that must never be recorded")
    if behaviour == "interrupt":
        raise KeyboardInterrupt
    if behaviour == "sigterm":
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
