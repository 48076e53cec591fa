"""The integrations ``init()`` can install, by framework name.

An integration's module is imported when its framework is, not before: a click app never
loads the typer or argparse integrations (each module costs a recording run ~0.5-1 M
instructions). Until its framework is imported, a post-import hook waits for it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING

from ..patching import when_imported

if TYPE_CHECKING:
    from . import Integration

#: Framework (the name of its top-level module) -> the module in this package and the class
#: of its integration.
FRAMEWORKS: dict[str, tuple[str, str]] = {
    "click": ("click", "ClickIntegration"),
    "typer": ("typer", "TyperIntegration"),
    "argparse": ("argparse", "ArgparseIntegration"),
}

_loaded: dict[str, Integration] = {}
_wanted: set[str] = set()


def integration(name: str) -> Integration:
    """The integration of framework ``name`` (its module imported on first use)."""
    found = _loaded.get(name)
    if found is None:
        module, cls = FRAMEWORKS[name]
        found = _loaded[name] = getattr(importlib.import_module(f"{__package__}.{module}"), cls)()
    return found


def instrument(names: Iterable[str]) -> None:
    """Instrument the named frameworks (now if imported, else when they are)."""
    for name in names:
        if name not in FRAMEWORKS:
            raise KeyError(f"no integration for {name!r}")
        _wanted.add(name)
        if name in sys.modules:
            integration(name).instrument()
        else:
            when_imported(name, _on_framework_import)


def _on_framework_import(module: ModuleType) -> None:
    if module.__name__ in _wanted:
        integration(module.__name__).instrument()


def uninstrument_all() -> None:
    """Remove every patch (tests, and ``CliTelemetryInstrumentor.uninstrument``); a framework
    imported later is not patched."""
    _wanted.clear()
    for loaded in _loaded.values():
        loaded.uninstrument()
