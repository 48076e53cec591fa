"""What ``opentelemetry-instrument`` decides for a CLI it starts: on, because running a program
under the launcher is the operator's opt-in, unless something explicit says no.

Shared by the instrumentor (which decides at start-up) and ``status`` (which shows what the
launcher would decide for an app last run under it), so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..config import env_prefix
from ..paths import Paths
from .state import DENIED, State

#: What ``status`` reports as the deciding source when the launcher turned telemetry on.
DECIDED_BY = "opentelemetry-instrument: the operator's opt-in"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def decide(environ: Mapping[str, str], app: str, state_dir: str | None) -> tuple[bool, str]:
    """(enabled, why): on by the launcher, unless something explicit says no."""
    prefix = env_prefix(app)
    switch = environ.get(f"{prefix}_TELEMETRY", "").strip().lower()
    if switch in _TRUE or switch in _FALSE:
        return switch in _TRUE, f"{prefix}_TELEMETRY={switch}"
    if environ.get("DO_NOT_TRACK", "").strip().lower() in _TRUE:
        return False, "DO_NOT_TRACK is set"
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False, "OTEL_SDK_DISABLED=true"
    if State.load(Paths.for_app(app, state_dir)).consent == DENIED:
        return False, "state file: disabled"
    return True, DECIDED_BY
