"""What ``status``, ``enable``, ``disable``, ``schema``, ``flush`` and ``doctor`` do.

Shared by the admin command (``otel-cli-telemetry --app NAME ...``) and the ``telemetry``
subcommand injected into click and typer apps, so both say and do exactly the same thing.
Each function returns the text to print; none raises for a broken state dir.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ._files import read_json, write_json
from .config import InitOptions, Settings, env_prefix, resolve
from .gate.state import DENIED, GRANTED, State, read_installation_id, update_state
from .handoff import spool
from .schema import Schema


def settings_for(app: str, state_dir: str | None = None) -> Settings:
    """Settings as the app would resolve them now, with its last saved schema."""
    from .capture import session

    current = session.settings
    if current is not None and current.app == app and (state_dir in (None, current.paths.root)):
        return current
    options = InitOptions(app=app, state_dir=state_dir)
    settings = resolve(options, os.environ, interactive=False)
    saved = read_json(settings.paths.schema_file) or {}
    fields = saved.get("fields")
    if isinstance(fields, dict):
        clean = {k: v for k, v in fields.items() if isinstance(k, str) and isinstance(v, str)}
        settings = settings.replace(schema=Schema(app, clean))
    return settings


def save_schema(settings: Settings) -> None:
    """Remember the app's declared fields, for the admin command's ``schema``."""
    saved = read_json(settings.paths.schema_file) or {}
    if saved.get("version") != settings.schema.version:
        write_json(
            settings.paths.schema_file,
            {"version": settings.schema.version, "fields": dict(settings.schema.fields)},
        )


def status(settings: Settings) -> str:
    """Whether telemetry is on, and which source decided it."""
    state = State.load(settings.paths)
    on = "on" if settings.enabled else "off"
    lines = [
        f"Telemetry for {settings.app} is {on}.",
        f"  decided by: {settings.decided_by}",
        f"  endpoint:   {settings.endpoint or 'none (records stay on this machine)'}",
        f"  protocol:   {settings.protocol}",
        f"  ci:         {settings.ci or 'no'}",
        f"  state dir:  {settings.paths.root}",
        f"  installation id: {read_installation_id(settings.paths) or '(not created)'}",
        f"  schema version:  {settings.schema.version}",
        f"  spool:      {spool.count(settings.paths)} record(s) waiting, "
        f"{spool.pending_drops(settings.paths)} dropped not yet reported",
    ]
    from .delivery.breaker import DeliveryState

    breaker = DeliveryState.load(settings.paths)
    if breaker.is_open():
        wait = int(breaker.open_until - time.time())
        lines.append(
            f"  breaker:    open for {wait}s more after {breaker.failures} failure(s): "
            f"{breaker.last_error}"
        )
    if state.corrupt:
        lines.append(
            "  note: the state file was unreadable and is ignored; `enable` or "
            "`disable` rewrites it"
        )
    prefix = env_prefix(settings.app)
    lines.append(
        f"  change: `{settings.app} telemetry enable|disable`, {prefix}_TELEMETRY=0|1, "
        "DO_NOT_TRACK=1"
    )
    return "\n".join(lines)


def enable(settings: Settings) -> str:
    """Persistently turn telemetry on."""
    update_state(
        settings.paths,
        consent=GRANTED,
        consent_source="command",
        consent_schema=settings.schema.version,
        notice_schema=settings.schema.version,
    )
    return f"Telemetry for {settings.app} is enabled."


def disable(settings: Settings) -> str:
    """Persistently turn telemetry off and delete what waits in the spool."""
    update_state(
        settings.paths,
        consent=DENIED,
        consent_source="command",
        consent_schema=settings.schema.version,
    )
    removed = sum(1 for entry in spool.entries(settings.paths) if spool.remove(entry.path))
    extra = f" {removed} unsent record(s) deleted." if removed else ""
    return f"Telemetry for {settings.app} is disabled; nothing more will be recorded.{extra}"


def schema_text(settings: Settings, fmt: str = "text") -> str:
    """Every field the app can send; ``json``; or ``collector``: the matching allowlist."""
    from .instruments import registered

    schema = Schema(settings.schema.app, settings.schema.fields, settings.schema.metrics or registered())
    if fmt == "json":
        return json.dumps(schema.as_dict(), indent=2, sort_keys=True)
    if fmt == "collector":
        from .schema_collector import render_collector_allowlist

        return render_collector_allowlist(schema)
    data: dict[str, Any] = schema.as_dict()
    lines = [
        f"Telemetry schema of {schema.app}, version {schema.version}",
        "",
        "Span attributes (one span per command):",
    ]
    lines += [f"  {k:32} {v}" for k, v in sorted(data["span_attributes"].items())]
    lines += ["", "Resource attributes:"]
    lines += [f"  {k:32} {v}" for k, v in sorted(data["resource_attributes"].items())]
    lines += ["", "Metrics:"]
    for name, meta in sorted(data["metrics"].items()):
        lines.append(f"  {name:32} {meta['kind']} ({meta['unit'] or '1'}) {meta['description']}")
    lines += [
        "",
        "Never sent: argument values, positional arguments, environment variables,",
        "file contents, paths, host name, IP address, user name, exception messages.",
    ]
    return "\n".join(lines)
