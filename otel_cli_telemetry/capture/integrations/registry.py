"""The integrations ``init()`` can install, by framework name."""

from __future__ import annotations

from collections.abc import Iterable

from . import Integration
from .argparse import ArgparseIntegration
from .click import ClickIntegration
from .typer import TyperIntegration

INTEGRATIONS: dict[str, Integration] = {
    "click": ClickIntegration(),
    "typer": TyperIntegration(),
    "argparse": ArgparseIntegration(),
}


def instrument(names: Iterable[str]) -> None:
    """Instrument the named frameworks (now if imported, else when they are)."""
    for name in names:
        INTEGRATIONS[name].instrument()


def uninstrument_all() -> None:
    """Remove every patch (tests, and ``CliTelemetryInstrumentor.uninstrument``)."""
    for integration in INTEGRATIONS.values():
        integration.uninstrument()
