"""Whether the environment switches telemetry off for this run, read from nothing else.

The first sources of ``config.resolve`` (the ``enabled`` argument, ``<APP>_TELEMETRY``, the
app's extra opt-out variables, ``DO_NOT_TRACK``, ``OTEL_SDK_DISABLED``) need only the
environment. ``init()`` asks :func:`switched_off` first: when one of them turns telemetry off
before any turns it on, the run is off whatever the state file or the defaults say, and
``init()`` returns without importing the configuration, the capture layer or anything else
(an off run costs what reading a few variables costs). ``config`` uses the same helpers;
a test checks that both always agree.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs a process that has not loaded it ~40 M instructions
if TYPE_CHECKING:  # annotations only: collections.abc costs an off run ~1 ms to import
    from collections.abc import Mapping, Sequence

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def env_prefix(app: str) -> str:
    """``deploy-ctl`` -> ``DEPLOY_CTL``: the prefix of the app's own variables."""
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in app.upper())


def flag(value: str | None) -> bool | None:
    """A switch's value: True (1/true/yes/on), False (0/false/no/off), None (unset, other)."""
    if value is None:
        return None
    value = value.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    return None


def switched_off(
    app: str, enabled: bool | None, opt_out_env: Sequence[str], environ: Mapping[str, str]
) -> str | None:
    """Why this run is off (as ``status`` words it), if an argument or a variable says so
    before any says on; None when the rest of the configuration must decide.

    Also None when ``<APP>_TELEMETRY_DEBUG`` or ``<APP>_TELEMETRY_LOG`` is set: those record
    (to print or log) even with telemetry off, so the full path runs.
    """
    prefix = env_prefix(app)
    if environ.get(f"{prefix}_TELEMETRY_LOG", "").strip() or environ.get(
        f"{prefix}_TELEMETRY_DEBUG", ""
    ).strip():
        return None
    if enabled is not None:
        return None if enabled else "init(enabled=...) argument"
    app_switch = flag(environ.get(f"{prefix}_TELEMETRY"))
    if app_switch is not None:
        return None if app_switch else f"{prefix}_TELEMETRY={environ[f'{prefix}_TELEMETRY']}"
    for name in opt_out_env:
        value = environ.get(name, "").strip()
        if value and flag(value) is not False:
            return f"{name} is set"
    if flag(environ.get("DO_NOT_TRACK")) is True:
        return "DO_NOT_TRACK is set"
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "OTEL_SDK_DISABLED=true"
    return None
