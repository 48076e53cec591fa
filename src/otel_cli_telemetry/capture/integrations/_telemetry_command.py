"""The ``telemetry`` subcommand added to a click or typer app's root group.

``deployctl telemetry status|enable|disable|schema`` does what the admin command does for
that app. The command's own run is not recorded. It is built with the same click the app's
group uses (the ``click`` package or typer's vendored copy).
"""

from __future__ import annotations

import sys
from typing import Any

from .. import session

NAME = "telemetry"


def inject_telemetry_group(command: Any) -> None:
    """Add the group to ``command`` if it is a root group without a ``telemetry`` command."""
    settings = session.settings
    if settings is None or not settings.options.inject_command:
        return
    commands = getattr(command, "commands", None)
    if not isinstance(commands, dict) or NAME in commands or not hasattr(command, "add_command"):
        return
    click_core = sys.modules.get(type(command).__module__.rsplit(".", 1)[0] + ".core")
    if click_core is None or not hasattr(click_core, "Group"):
        return
    command.add_command(_build(click_core), NAME)


def _build(core: Any) -> Any:
    from ... import control

    def _run(action: str, fmt: str = "text") -> None:
        record = session.current()
        if record is not None:
            record.finished = True  # our own subcommand is not a use of the app
            if session.active is record:
                session.active = None
        settings = session.settings
        if settings is None:
            return
        text = {
            "status": control.status,
            "enable": control.enable,
            "disable": control.disable,
        }.get(action)
        out = text(settings) if text else control.schema_text(settings, fmt)
        sys.stdout.write(out.rstrip("\n") + "\n")

    group = core.Group(NAME, help="Show or change this app's usage telemetry.")
    for action, help_text in (
        ("status", "Whether telemetry is on, and why."),
        ("enable", "Turn telemetry on."),
        ("disable", "Turn telemetry off."),
    ):
        group.add_command(
            core.Command(action, callback=lambda action=action: _run(action), help=help_text)
        )
    fmt_option = core.Option(
        ["--format", "fmt"],
        default="text",
        help="text, json, or collector (the matching collector allowlist)",
    )
    group.add_command(
        core.Command(
            "schema",
            callback=lambda fmt: _run("schema", fmt),
            params=[fmt_option],
            help="Every field this app can send.",
        )
    )
    return group
