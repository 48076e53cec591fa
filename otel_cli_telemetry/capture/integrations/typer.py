"""typer integration: typer's own ``_main`` is the boundary; its click gets the click patches.

typer 0.26 and later vendor click as ``typer._click`` and do not use the ``click`` package,
so patching click alone would miss them; older typer runs on ``click`` (covered by the click
integration). ``typer.core._main`` replaces click's ``main`` for typer commands in every
version that has it; older versions are covered through ``TyperCommand.main``/``TyperGroup.main``.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import Integration, defining_class
from ._clickcore import make_main_wrapper, wrap_invoke, wrap_make_context


class TyperIntegration(Integration):
    """Patches ``typer.core`` and, when present, ``typer._click.core``."""

    module_name = "typer"

    def patch(self, module: Any) -> None:
        """Wrap typer's main and its vendored click's make_context and invoke."""
        core = importlib.import_module("typer.core")
        main_wrapper = make_main_wrapper("typer")
        if hasattr(core, "_main"):
            self.wrap(core, "_main", main_wrapper)
        else:
            for name in ("TyperCommand", "TyperGroup"):
                klass = getattr(core, name, None)
                if klass is not None:
                    self.wrap(defining_class(klass, "main"), "main", main_wrapper)
        try:
            vendored = importlib.import_module("typer._click.core")
        except ImportError:
            return  # typer < 0.26 runs on the click package: the click integration covers it
        command = vendored.Command
        self.wrap(defining_class(command, "make_context"), "make_context", wrap_make_context)
        self.wrap(defining_class(command, "invoke"), "invoke", wrap_invoke)
        # typer's vendored click has no Group: TyperGroup subclasses Command and resolves
        # subcommands in its own invoke (an unknown name fails there).
        group = getattr(core, "TyperGroup", None)
        if group is not None:
            self.wrap(defining_class(group, "invoke"), "invoke", wrap_invoke)
        # typer.testing.CliRunner and plain typer._click commands go through click's main.
        self.wrap(defining_class(command, "main"), "main", main_wrapper)
