"""In-process delivery for CI, where no later run will drain the spool.

The drain runs in a daemon thread and the CLI waits for it at most ``budget_s``: a silent or
unreachable endpoint costs the CI job that budget and nothing more (every request's timeout
is also cut to what is left of the budget). What is not delivered stays in the spool, for a
later command of the same job or ``flush``. The breaker is respected: once an endpoint
failed, the next commands of the job do not pay the budget again until it reopens.

Where no thread can be started (Python 3.12+ refuses new threads in ``atexit`` handlers,
which is where an argparse CLI's record ends) the drain runs in this thread, bounded by the
same deadline through its request timeouts.
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
    # The drain aims to be done a little before the CLI stops waiting: a worker still blocked
    # in a request when the interpreter finalizes slows the exit down by a tenth of a second.
    drain_deadline = deadline - min(0.1, budget_s / 4)

    def run() -> None:
        with internal_errors("in-process delivery"):
            from .drainer import drain

            drain(
                settings.paths,
                endpoint=settings.options.endpoint,
                protocol=settings.protocol,
                deadline=drain_deadline,
            )

    worker = threading.Thread(target=run, name="otel-cli-telemetry-ci-delivery", daemon=True)
    try:
        worker.start()
    except RuntimeError:  # interpreter shutting down: no new threads
        run()
        return
    worker.join(max(0.0, deadline - time.time()))
