"""The one-time notice and the consent prompt, both on stderr, never on stdout."""

from __future__ import annotations

import sys
from typing import TextIO

from ..config import Settings, env_prefix
from .state import DENIED, GRANTED, update_state


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
        f"Turn it off: `{app} telemetry disable`, or set {env_prefix(app)}_TELEMETRY=0 or DO_NOT_TRACK=1.",
        f"See every field: `{app} telemetry schema`.",
    ]
    if settings.options.policy_url:
        lines.append(f"Policy: {settings.options.policy_url}")
    return "\n".join(lines) + "\n"


def show_notice(settings: Settings, stream: TextIO | None = None) -> None:
    """Print the notice once per schema version and remember that it was shown."""
    out = stream or sys.stderr
    out.write(notice_text(settings))
    out.flush()
    update_state(settings.paths, notice_schema=settings.schema.version)


def ask(settings: Settings, stdin: TextIO | None = None, stream: TextIO | None = None) -> bool:
    """Ask for consent on the terminal; the answer persists (for this schema version).

    Only called on an interactive terminal (see ``config``). End of input or Ctrl-C count as
    "no" for this run and are not persisted: the question comes again next time.
    """
    out = stream or sys.stderr
    source = stdin or sys.stdin
    app = settings.app
    out.write(notice_text(settings).replace("Nothing was sent for this run.\n", ""))
    out.write(f"Allow {app} to send anonymous usage telemetry? [y/N]: ")
    out.flush()
    try:
        answer = source.readline()
    except (KeyboardInterrupt, OSError, ValueError):
        out.write("\n")
        return False
    if not answer:
        return False
    granted = answer.strip().lower() in ("y", "yes")
    update_state(
        settings.paths,
        consent=GRANTED if granted else DENIED,
        consent_source="prompt",
        consent_schema=settings.schema.version,
    )
    return granted
