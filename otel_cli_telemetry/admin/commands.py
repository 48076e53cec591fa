"""The ``telemetry`` command for argparse CLIs (click and typer get it injected).

::

    import otel_cli_telemetry as telemetry

    telemetry.init(app="mytool", version="1.0")
    parser = argparse.ArgumentParser(prog="mytool")
    commands = parser.add_subparsers(dest="command")
    telemetry.add_telemetry_command(commands)
    ...
    args = parser.parse_args()
    code = telemetry.handle_telemetry_command(args)
    if code is not None:
        return code  # it printed what the user asked for

``mytool telemetry [status|enable|disable|schema [--format F]]`` then does what the admin
command and the injected click/typer subcommand do (:mod:`otel_cli_telemetry.admin.control`).
Running it is not recorded as a use of the app. Importing this module is cheap (the package
imports it): argparse and the control code are loaded only when used.
"""

from __future__ import annotations

import sys
from typing import Any

#: The attribute the helper sets on the parsed namespace (unlikely to clash with an app's).
ACTION_DEST = "_otel_cli_telemetry_action"
FORMAT_DEST = "_otel_cli_telemetry_format"

_HELP = {
    "status": "whether telemetry is on, and which setting decided",
    "enable": "turn telemetry on",
    "disable": "turn telemetry off and delete records not sent yet",
    "schema": "every field this app can send",
}


def add_telemetry_command(subparsers: Any, name: str = "telemetry") -> Any:
    """Add ``name`` (default ``telemetry``) to an argparse ``add_subparsers()`` result.

    Returns the new subparser. Without an action, ``mytool telemetry`` shows the status.
    """
    base = subparsers._parser_class

    class TelemetryParser(base):  # type: ignore[misc, valid-type]
        """Forgets the run as soon as the command is chosen (before ``--help`` exits)."""

        def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
            forget_this_run()
            return super().parse_known_args(*args, **kwargs)

    subparsers._parser_class = TelemetryParser
    try:
        parser = subparsers.add_parser(
            name,
            help="show or change this app's usage telemetry",
            description="Show or change this app's usage telemetry.",
        )
    finally:
        subparsers._parser_class = base
    actions = parser.add_subparsers(dest=ACTION_DEST, metavar="ACTION")
    parser.set_defaults(**{ACTION_DEST: "status", FORMAT_DEST: "text"})
    for action, help_text in _HELP.items():
        sub = actions.add_parser(action, help=help_text, description=help_text)
        if action == "schema":
            from .control import FORMATS

            sub.add_argument(
                "--format",
                dest=FORMAT_DEST,
                choices=FORMATS,
                default="text",
                help="text; json; collector (the matching collector allowlist); "
                "policy (the telemetry policy, Markdown)",
            )
    return parser


def handle_telemetry_command(args: Any) -> int | None:
    """Run the telemetry command if ``args`` (from ``parse_args``) selected it.

    Returns None when another command was selected (the app goes on as usual), else the
    exit code (0, or 1 when the setting could not be saved) after printing the result.
    Typical use: ``code = handle_telemetry_command(args); if code is not None: return code``.
    """
    action = getattr(args, ACTION_DEST, None)
    if action is None:
        return None
    fmt = getattr(args, FORMAT_DEST, "text") or "text"
    return run_telemetry_command(str(action), str(fmt))


def run_telemetry_command(action: str, fmt: str = "text") -> int:
    """Do ``action`` for the app ``init()`` was called for; print; return the exit code."""
    from ..capture import session
    from .control import run_action

    forget_this_run()
    settings = session.settings
    if settings is None:
        sys.stderr.write("otel_cli_telemetry.init() was not called: no telemetry to manage\n")
        return 1
    text, code = run_action(settings, action, fmt)
    stream = sys.stdout if code == 0 else sys.stderr
    stream.write(text.rstrip("\n") + "\n")
    stream.flush()
    return code


def forget_this_run() -> None:
    """Do not record the current command: managing telemetry is not a use of the app."""
    from ..capture import session

    record = session.active
    if record is not None:
        record.finished = True
        session.active = None
