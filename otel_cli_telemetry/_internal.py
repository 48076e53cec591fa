"""Keeping the SDK's own errors away from the host program.

Every hook into the host runs our code inside :func:`internal_errors`. An exception there is
handed to :func:`report_internal_error`, which logs it at debug level and never raises. Our
own test suite replaces the handler (see ``otel_cli_telemetry.testing``) so that a swallowed
error fails the test that caused it.

``logging`` is never imported by us: if the host has not imported it, no handler can be
configured for our logger and a debug message would go nowhere anyway. (Importing it would
cost ~3 ms, and any import after an unhandled Ctrl-C changes the exit status; see
``pipeline.connect``.)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LOGGER_NAME = "otel_cli_telemetry"

InternalErrorHandler = Callable[[str, BaseException], None]


def _log_internal_error(where: str, exc: BaseException) -> None:
    debug("internal error in %s: %s: %s", where, type(exc).__name__, exc, exc_info=exc)


#: Replaced by the test suite's guard; see module docstring.
internal_error_handler: InternalErrorHandler = _log_internal_error


def report_internal_error(where: str, exc: BaseException) -> None:
    """Hand an error raised by our own code to the current handler; never raises."""
    try:
        internal_error_handler(where, exc)
    except Exception:
        pass


@contextmanager
def internal_errors(where: str) -> Iterator[None]:
    """Run SDK code so that any ``Exception`` it raises is reported, not propagated.

    Only wrap our own code: the host's code must run outside this block so that its
    exceptions keep their normal course.
    """
    try:
        yield
    except Exception as exc:
        report_internal_error(where, exc)


def debug(message: str, *args: object, exc_info: BaseException | None = None) -> None:
    """Log at debug level on the ``otel_cli_telemetry`` logger, if the host uses logging."""
    logging = sys.modules.get("logging")
    if logging is None:
        return
    logger = logging.getLogger(LOGGER_NAME)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("[otel_cli_telemetry] " + message, *args, exc_info=exc_info)
