"""What ``status``, ``enable``, ``disable`` and ``schema`` do.

Shared by the admin command (``otel-cli-telemetry --app NAME ...``), the ``telemetry``
subcommand injected into click and typer apps, and the argparse helper
(:mod:`otel_cli_telemetry.admin.commands`), so all three say and do exactly the same thing.
:func:`run_action` returns the text to print and an exit code; nothing here raises for a
broken state dir.

The admin command runs outside the app, so the app's ``init()`` arguments that change the
decision (declared fields, consent mode, extra opt-out variables) are saved next to the
state (``schema.json``) whenever the app writes state, and read back by :func:`settings_for`.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from .._files import read_json, why_not_appendable
from ..config import (
    LAUNCHER_MARKER,
    InitOptions,
    Settings,
    delivery_protocol,
    env_prefix,
    launched_service_name,
    launcher_decision,
    resolve,
)
from ..gate.state import DENIED, GRANTED, State, read_installation_id, update_state
from ..handoff import spool
from ..paths import Paths
from ..schema import Schema

ACTIONS = ("status", "enable", "disable", "schema")
FORMATS = ("text", "json", "collector", "policy")


def _saved_options(app: str, state_dir: str | None, saved: dict[str, Any]) -> InitOptions:
    """InitOptions as the app last passed them (invalid saved values are ignored)."""
    fields = saved.get("fields")
    clean = (
        {k: v for k, v in fields.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(fields, dict)
        else {}
    )
    kwargs: dict[str, Any] = {"fields": clean}
    opt_out = saved.get("opt_out_env")
    if isinstance(opt_out, list) and all(isinstance(v, str) for v in opt_out):
        kwargs["opt_out_env"] = tuple(opt_out)
    for key, kinds in (
        ("consent", (str,)),
        ("ask_share", (int, float)),
        ("endpoint", (str,)),
        ("policy_url", (str,)),
        ("version", (str,)),
    ):
        value = saved.get(key)
        if isinstance(value, kinds) and not isinstance(value, bool):
            kwargs[key] = value
    try:
        return InitOptions(app=app, state_dir=state_dir, **kwargs)
    except (TypeError, ValueError):
        return InitOptions(app=app, state_dir=state_dir)


def settings_for(app: str, state_dir: str | None = None) -> Settings:
    """Settings as the app would resolve them now (from outside the app, with no terminal).

    Inside the app (the injected command), the app's own settings for this run.
    """
    from ..capture import session

    current = session.settings
    if current is not None and current.app == app and (state_dir in (None, current.paths.root)):
        return current
    paths = Paths.for_app(app, state_dir)
    saved = read_json(paths.schema_file) or {}
    options = _saved_options(app, state_dir, saved)
    settings = resolve(options, os.environ, interactive=True)
    if os.path.exists(os.path.join(paths.root, LAUNCHER_MARKER)) and not (
        settings.decided_by.startswith(("init(", f"{env_prefix(app)}_TELEMETRY"))
    ):
        # The app runs under opentelemetry-instrument: no notice, no prompt; on unless an
        # explicit no. (A "default: ..." answer would describe an app that calls init().)
        enabled, why = launcher_decision(os.environ, app, paths)
        return settings.replace(
            enabled=enabled,
            decided_by=why,
            show_notice=False,
            ask=False,
            service_name=launched_service_name(os.environ) or app,
        )
    if settings.show_notice:
        settings = settings.replace(
            show_notice=False,
            decided_by="default: off until the notice has been shown (on the app's next run)",
        )
    elif settings.ask:
        settings = settings.replace(
            ask=False,
            decided_by="ask: off until someone answers yes at the prompt "
            "(asked on the app's next run on a terminal)",
        )
    return settings


def save_schema(settings: Settings) -> None:
    """Remember the app's declared fields and consent options, for the admin command."""
    from ..gate.state import save_declaration

    save_declaration(settings.paths, settings.declaration())


def _effective(settings: Settings) -> str:
    """What the app would decide now, after a change of the state file."""
    fresh = resolve(settings.options, os.environ, interactive=False)
    on = "on" if fresh.enabled else "off"
    return f"Telemetry is now {on} (decided by: {fresh.decided_by})."


def _log_file(path: str | None) -> str:
    """The log file, and why it cannot be written if so (appends fail silently at run time)."""
    if path is None:
        return "none"
    problem = why_not_appendable(path)
    if problem is None:
        return path
    return f"{path}: CANNOT be written ({problem}); no record is logged"


def _protocol_line(settings: Settings) -> str:
    used = delivery_protocol(settings.protocol)
    if used != settings.protocol:
        return f"{used} ({settings.protocol} asked; the grpc extra is not installed)"
    return used


def status(settings: Settings) -> str:
    """Whether telemetry is on, and which source decided it."""
    state = State.load(settings.paths)
    on = "on" if settings.enabled else "off"
    lines = [
        f"Telemetry for {settings.app} is {on}.",
        f"  decided by: {settings.decided_by}",
        f"  consent:    {settings.options.consent}",
        f"  endpoint:   {settings.endpoint or 'none (records stay on this machine)'}",
        f"  protocol:   {_protocol_line(settings)}",
        f"  signals:    traces {'sent' if settings.send_traces else 'not sent'}, "
        f"metrics {'sent' if settings.send_metrics else 'not sent'} "
        f"({settings.metrics_temporality} temporality)",
        f"  sampler:    {settings.sampler}"
        + (f" ({settings.sampler_ratio:g})" if settings.sampler.endswith("ratio") else ""),
        f"  service:    {settings.service_name}",
        f"  ci:         {settings.ci or 'no'}",
        f"  debug:      {'on: records printed on stderr, none sent' if settings.debug else 'off'}",
        f"  log file:   {_log_file(settings.log_path)}",
        f"  state dir:  {settings.paths.root}",
        f"  installation id: {read_installation_id(settings.paths) or '(not created)'}",
        f"  schema version:  {settings.schema.version}",
        f"  spool:      {spool.count(settings.paths)} record(s) waiting, "
        f"{spool.pending_drops(settings.paths)} dropped not yet reported",
    ]
    from ..delivery.breaker import DeliveryState

    breaker = DeliveryState.load(settings.paths)
    if breaker.is_open(endpoint=settings.endpoint):
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
    from ..config_check import otel_problems

    problems = otel_problems(os.environ, settings.options.endpoint)
    if problems:
        lines.append("  OpenTelemetry variables not honoured as set:")
        lines.extend(f"    - {problem}" for problem in problems)
    prefix = env_prefix(settings.app)
    # A CLI run under opentelemetry-instrument has no `telemetry` subcommand of ours.
    launched = os.path.exists(os.path.join(settings.paths.root, LAUNCHER_MARKER))
    command = (
        f"otel-cli-telemetry --app {settings.app}" if launched else f"{settings.app} telemetry"
    )
    lines.append(f"  change: `{command} enable|disable`, {prefix}_TELEMETRY=0|1, DO_NOT_TRACK=1")
    return "\n".join(lines)


def enable(settings: Settings) -> str:
    """Persistently turn telemetry on (raises OSError if the state cannot be written)."""
    update_state(
        settings.paths,
        consent=GRANTED,
        consent_source="command",
        consent_schema=settings.schema.version,
        notice_schema=settings.schema.version,
    )
    save_schema(settings)
    return f"Telemetry for {settings.app} is enabled. {_effective(settings)}"


def disable(settings: Settings) -> str:
    """Persistently turn telemetry off and delete what waits in the spool."""
    update_state(
        settings.paths,
        consent=DENIED,
        consent_source="command",
        consent_schema=settings.schema.version,
    )
    save_schema(settings)
    removed = sum(1 for entry in spool.entries(settings.paths) if spool.remove(entry.path))
    spool.clear_quarantine(settings.paths)  # set-aside files may hold records too
    extra = f" {removed} unsent record(s) deleted." if removed else ""
    return (
        f"Telemetry for {settings.app} is disabled; nothing more will be recorded.{extra} "
        f"{_effective(settings)}"
    )


def current_schema(settings: Settings) -> Schema:
    """The schema with the metrics this process created (none in the admin command)."""
    from ..instruments import registered

    schema = settings.schema
    return Schema(schema.app, schema.fields, schema.metrics or registered())


def schema_text(settings: Settings, fmt: str = "text") -> str:
    """Every field the app can send: ``text``, ``json``, ``collector`` (the matching
    collector allowlist) or ``policy`` (the Markdown telemetry policy)."""
    schema = current_schema(settings)
    if fmt == "json":
        return json.dumps(schema.as_dict(), indent=2, sort_keys=True)
    if fmt == "collector":
        from .schema_collector import render_collector_allowlist

        return render_collector_allowlist(schema)
    if fmt == "policy":
        from .policy import render_policy

        return render_policy(settings, schema)
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
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
        "",
        "The collector allowlist that matches: `schema --format collector`;",
        "the telemetry policy, as Markdown: `schema --format policy`.",
    ]
    return "\n".join(lines)


def run_action(settings: Settings, action: str, fmt: str = "text") -> tuple[str, int]:
    """Run one of :data:`ACTIONS`: (text, exit code). A state that cannot be written is
    reported (exit 1), never raised."""
    try:
        if action == "status":
            return status(settings), 0
        if action == "enable":
            return enable(settings), 0
        if action == "disable":
            return disable(settings), 0
        if action == "schema":
            return schema_text(settings, fmt), 0
    except OSError as exc:
        prefix = env_prefix(settings.app)
        return (
            f"Could not save the telemetry setting in {settings.paths.root}: "
            f"{exc.strerror or exc}. For this shell, set {prefix}_TELEMETRY=0 or "
            "DO_NOT_TRACK=1 instead.",
            1,
        )
    except ValueError as exc:
        return str(exc), 2
    return f"unknown action {action!r}; use one of {', '.join(ACTIONS)}", 2
