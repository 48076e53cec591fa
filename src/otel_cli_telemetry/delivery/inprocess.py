"""In-process delivery for CI, where no later run will drain the spool.

The drain runs in a daemon thread and the CLI waits for it at most ``budget_s``: a silent or
unreachable endpoint costs the CI job that budget and nothing more. What is not delivered
stays in the spool.
"""

from __future__ import annotations

import threading
import time

from .._internal import internal_errors
from ..config import Settings


def deliver_within(settings: Settings, budget_s: float) -> None:
    """Drain the spool for at most ``budget_s`` seconds of this process's time."""
    if budget_s <= 0:
        return
    deadline = time.time() + budget_s

    def run() -> None:
        with internal_errors("in-process delivery"):
            from .drainer import drain

            drain(
                settings.paths,
                endpoint=settings.endpoint,
                protocol=settings.protocol,
                deadline=deadline,
            )

    worker = threading.Thread(target=run, name="otel-cli-telemetry-ci-delivery", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.time()))
