"""The one-time notice and the consent prompt, both on stderr, never on stdout."""

from __future__ import annotations

import sys
from typing import TextIO

from ..config import Settings, env_prefix
from .state import DENIED, GRANTED, State, update_state


def notice_text(settings: Settings) -> str:
    """The notice: what is collected, that nothing was sent this run, how to turn it off."""
    app = settings.app
    custom = settings.options.notice
    if custom:
        return custom.rstrip() + "\n"
    lines = [
        f"{app} collects anonymous usage telemetry: which commands run, how long they take,",
        "how they end, and the OS and versions. Never arguments, file contents, paths,",
        "environment variables or anything that identifies you. Nothing was sent for this run.",
        f"Turn it off: `{app} telemetry disable`, or set {env_prefix(app)}_TELEMETRY=0 "
        "or DO_NOT_TRACK=1.",
        f"See every field: `{app} telemetry schema`.",
    ]
    if settings.options.policy_url:
        lines.append(f"Policy: {settings.options.policy_url}")
    return "\n".join(lines) + "\n"


def show_notice(settings: Settings, stream: TextIO | None = None) -> bool:
    """Remember the notice for this schema version, then print it; False if not shown.

    Remembering comes first: if the state file cannot be written, the notice is not shown
    (it would repeat on every run, and telemetry stays off without it). If printing fails
    (stderr closed), the previous notice version is put back, so it is shown next time.
    """
    previous = State.load(settings.paths).notice_schema
    try:
        update_state(settings.paths, notice_schema=settings.schema.version)
    except OSError:
        return False
    out = stream or sys.stderr
    try:
        out.write(notice_text(settings))
        out.flush()
    except (OSError, ValueError, AttributeError):
        try:
            update_state(settings.paths, notice_schema=previous)
        except OSError:
            pass
        return False
    return True


def ask(
    settings: Settings, stdin: TextIO | None = None, stream: TextIO | None = None
) -> bool | None:
    """Ask for consent on the terminal; the answer persists (for this schema version).

    Only called on an interactive terminal (see ``config``). Returns the answer, or None
    when there was none: end of input or Ctrl-C count as "no" for this run and are not
    persisted, so the question comes again next time. Enter alone is the default, "no".
    """
    out = stream or sys.stderr
    source = stdin or sys.stdin
    app = settings.app
    out.write(notice_text(settings).replace(" Nothing was sent for this run.", ""))
    out.write(f"Allow {app} to send anonymous usage telemetry? [y/N]: ")
    out.flush()
    try:
        answer = source.readline()
    except (KeyboardInterrupt, OSError, ValueError):
        out.write("\n")
        out.flush()
        return None
    if not answer:
        out.write("\n")
        out.flush()
        return None
    granted = answer.strip().lower() in ("y", "yes")
    try:
        update_state(
            settings.paths,
            consent=GRANTED if granted else DENIED,
            consent_source="prompt",
            consent_schema=settings.schema.version,
            notice_schema=settings.schema.version,
        )
    except OSError:
        pass  # the answer holds for this run; the question comes again next time
    return granted
