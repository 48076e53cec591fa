"""What ``init()`` does with the user once the configuration is resolved: notice or question.

:func:`interact` turns the resolved decision into what happens on this run:

- ``consent="notice"``: the one-time notice is shown (stderr) and remembered for this schema
  version; nothing is sent on that run. If the state cannot be written, the notice is not
  shown at all and telemetry stays off: a notice that cannot be remembered would repeat on
  every run, and nothing may be sent before one was shown.
- ``consent="ask"`` with ``ask_share`` below 1: only installations whose random id falls in
  the share are asked (deterministic, so the same installation is always in or out). The
  question is not asked when the answer could not be saved; telemetry stays off.
- The app's own ``telemetry`` command (``app telemetry disable``) is never preceded by the
  notice or the question: the user is already dealing with telemetry.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .._internal import internal_errors
from ..config import Settings, in_ask_share

#: The name of the injected subcommand (and the argparse helper's default).
COMMAND_NAME = "telemetry"

NOTICE_DEFERRED = "default: off until the notice has been shown (on the next run)"
NOTICE_UNRECORDABLE = "default: off, the state dir is not writable so the notice cannot be recorded"
NOT_IN_SHARE = "ask: this installation is not in the asked share"
NOT_SAVABLE = "ask: off, the state dir is not writable so an answer could not be saved"


def runs_telemetry_command(argv: Sequence[str]) -> bool:
    """Whether the first word of the command line (after the program) is ``telemetry``."""
    for token in argv[1:]:
        if token == "--":  # noqa: S105
            return False
        if not token.startswith("-"):
            return token == COMMAND_NAME
    return False


def interact(settings: Settings, argv: Sequence[str] | None = None) -> Settings:
    """Show the notice or ask the question if the decision calls for it; the final settings."""
    argv = sys.argv if argv is None else argv
    if not (settings.show_notice or settings.ask):
        return settings
    if runs_telemetry_command(argv):
        if settings.show_notice:
            return settings.replace(show_notice=False, decided_by=NOTICE_DEFERRED)
        return settings.replace(
            ask=False, decided_by="ask: not asked while running the telemetry command"
        )
    if settings.show_notice:
        from .notice import show_notice

        shown = False
        with internal_errors("notice"):
            shown = show_notice(settings)
        if shown:
            _remember_options(settings)
            return settings.replace(show_notice=False)
        return settings.replace(show_notice=False, decided_by=NOTICE_UNRECORDABLE)
    return _ask(settings)


def _ask(settings: Settings) -> Settings:
    """Ask, unless the installation is outside the share or an answer could not be saved
    (asking on every run would be worse than not asking: telemetry stays off)."""
    from .state import installation_id, update_state

    try:
        update_state(settings.paths)  # proves the answer can be saved
        install_id = installation_id(settings.paths) if settings.options.ask_share < 1 else ""
    except OSError:
        return settings.replace(ask=False, decided_by=NOT_SAVABLE)
    if install_id and not in_ask_share(install_id, settings.options.ask_share):
        return settings.replace(ask=False, decided_by=NOT_IN_SHARE)
    from .notice import ask

    answer: bool | None = None
    with internal_errors("prompt"):
        answer = ask(settings)
    if answer is None:
        return settings.replace(ask=False, decided_by="ask: no answer (asked again next time)")
    _remember_options(settings)
    how = "accepted at the prompt" if answer else "declined at the prompt"
    return settings.replace(enabled=answer, ask=False, decided_by=f"state file: {how}")


def _remember_options(settings: Settings) -> None:
    """Save the fields and consent options next to the state, for the admin command."""
    from .state import save_declaration as save_schema

    try:
        save_schema(settings.paths, settings.declaration())
    except OSError:
        pass
