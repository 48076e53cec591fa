"""The ``telemetry`` subcommand added to a click or typer app's root group.

``deployctl telemetry [status|enable|disable|schema [--format F]]`` does what the admin
command does for that app (:func:`otel_cli_telemetry.admin.control.run_action`). Its own run is
not recorded. It is built from the classes of the app's own framework: click's ``Group``
and ``Command`` (the ``click`` package, or typer < 0.26 on it), or typer's ``TyperGroup``
and ``TyperCommand`` (typer >= 0.26 vendors a click without ``Group``). The actions parse
their one option (``--format``) themselves, so no framework-specific option class is needed.
"""

from __future__ import annotations

import sys
from typing import Any

from ..capture import session

NAME = "telemetry"
_HELP = {
    "status": "Whether telemetry is on, and which setting decided.",
    "enable": "Turn telemetry on.",
    "disable": "Turn telemetry off and delete records not sent yet.",
    "schema": "Every field this app can send. --format text|json|collector|policy.",
}


def inject_telemetry_group(command: Any) -> None:
    """Add the group to ``command`` if it is a root group without a ``telemetry`` command."""
    settings = session.settings
    if settings is None or not settings.options.inject_command:
        return
    commands = getattr(command, "commands", None)
    if not isinstance(commands, dict) or NAME in commands or not hasattr(command, "add_command"):
        return
    classes = _framework_classes(command)
    if classes is not None:
        command.add_command(_build(*classes), NAME)


def _framework_classes(command: Any) -> tuple[type, type] | None:
    """(group class, command class) of the framework ``command`` was built with."""
    for klass in type(command).__mro__:
        module = sys.modules.get(klass.__module__)
        if module is None:
            continue
        if klass.__name__ == "TyperGroup" and hasattr(module, "TyperCommand"):
            return module.TyperGroup, module.TyperCommand
        if klass.__name__ == "Group" and klass.__module__.endswith("click.core"):
            return module.Group, module.Command
    return None


def parse_format(args: list[str]) -> str | None:
    """The value of ``--format X`` / ``--format=X`` in ``args``; None if malformed."""
    fmt = "text"
    rest = list(args)
    while rest:
        token = rest.pop(0)
        if token == "--format" and rest:  # noqa: S105
            fmt = rest.pop(0)
        elif token.startswith("--format="):
            fmt = token.split("=", 1)[1]
        else:
            return None
    return fmt


def _build(group_class: type, command_class: type) -> Any:
    from .commands import run_telemetry_command

    class Action(command_class):  # type: ignore[misc]
        """One action; parses its own ``--format`` so it needs no option class."""

        def invoke(self, ctx: Any) -> Any:
            fmt = parse_format(list(getattr(ctx, "args", [])))
            if fmt is None:
                sys.stderr.write(f"usage: {ctx.command_path} [--format FORMAT]\n")
                ctx.exit(2)
            code = run_telemetry_command(str(self.name), fmt or "text")
            if code:
                ctx.exit(code)

    class Telemetry(group_class):  # type: ignore[misc]
        """``telemetry`` alone shows the status; no run of it is recorded (``--help`` too)."""

        def parse_args(self, ctx: Any, args: list[str]) -> Any:
            from .commands import forget_this_run

            forget_this_run()
            return super().parse_args(ctx, args)

    group = Telemetry(
        name=NAME,
        help="Show or change this app's usage telemetry.",
        invoke_without_command=True,
        callback=_status_without_action,
    )
    for action, help_text in _HELP.items():
        settings: dict[str, Any] = {}
        if action == "schema":
            settings = {"ignore_unknown_options": True, "allow_extra_args": True}
        group.add_command(Action(name=action, help=help_text, context_settings=settings), action)
    return group


def _status_without_action() -> None:
    """Callback of the group: with no action given, print the status."""
    from .commands import run_telemetry_command

    context = _current_context()
    if context is not None and context.invoked_subcommand is None:
        code = run_telemetry_command("status")
        if code:
            context.exit(code)


def _current_context() -> Any:
    for name in ("click.globals", "typer._click.globals"):
        module = sys.modules.get(name)
        if module is not None:
            context = module.get_current_context(silent=True)
            if context is not None and context.info_name == NAME:
                return context
    return None
