"""click integration: one record per ``main()`` call of a click command or group.

Patched on the classes that define them (``Command.main``, ``Command.make_context``,
``Command.invoke``; ``BaseCommand`` on click 8.1), so groups, nested groups, chained groups
and every ``Command`` subclass are covered, unlike an exact-class check. The root group also
gets a ``telemetry`` subcommand (``status``, ``enable``, ``disable``, ...) unless the app
passed ``inject_command=False`` to ``init()``.

Usage::

    import otel_cli_telemetry as telemetry
    telemetry.init(app="deployctl", version="1.4.2")   # before or after `import click`
"""

from __future__ import annotations

from typing import Any

from . import Integration, defining_class
from ._clickcore import make_main_wrapper, wrap_invoke, wrap_make_context


class ClickIntegration(Integration):
    """Patches ``click.core``."""

    module_name = "click"

    def patch(self, module: Any) -> None:
        """Wrap main, make_context and invoke where click defines them."""
        core = module.core
        command = core.Command
        self.wrap(
            defining_class(command, "main"),
            "main",
            make_main_wrapper("click"),
        )
        self.wrap(defining_class(command, "make_context"), "make_context", wrap_make_context)
        self.wrap(defining_class(command, "invoke"), "invoke", wrap_invoke)
        # Group.invoke resolves the subcommand itself (an unknown name fails there).
        self.wrap(defining_class(core.Group, "invoke"), "invoke", wrap_invoke)
