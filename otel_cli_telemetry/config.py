"""All configuration, resolved in one place and one order.

For every setting the first source that says something wins:

1. explicit arguments to :func:`otel_cli_telemetry.init`;
2. the app's own environment variables (``<APP>_TELEMETRY``, ``<APP>_TELEMETRY_DEBUG``,
   ``<APP>_TELEMETRY_LOG``, and any extra opt-out variables the app names);
3. the cross-tool switches ``DO_NOT_TRACK`` and ``OTEL_SDK_DISABLED``, and ``OTEL_EXPORTER_OTLP_*``;
4. the state file (``enable``/``disable``, a prompt's answer, the notice already shown);
5. defaults (``consent="notice"``: on once the notice has been shown; ``"ask"``: off until yes).

:class:`Settings` records which source decided whether telemetry is on (``decided_by``), so
``status`` can explain it. Nothing here writes files or prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .capture.environment import detect_agent, detect_ci
from .paths import Paths
from .schema import BUILTIN_RESOURCE_ATTRIBUTES, BUILTIN_SPAN_ATTRIBUTES, Schema

CONSENT_MODES = ("notice", "ask")
DEFAULT_CI_BUDGET_S = 2.0

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# Checked with string operations, not regexes: compiling one costs ~0.2 ms on every run.
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_FIELD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def _valid_app_name(name: object) -> bool:
    """Letters, digits, ``.``, ``_``, ``-``; starts with a letter or digit; at most 64."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 64
        and name[0] in _ALNUM
        and all(c in _ALNUM or c in "._-" for c in name)
    )


def _valid_field_name(name: object) -> bool:
    """Dot-separated segments of lowercase letters, digits and ``_``; starts with a letter."""
    if not isinstance(name, str) or not name or not ("a" <= name[0] <= "z"):
        return False
    return all(part and set(part) <= _FIELD_CHARS for part in name.split("."))


def env_prefix(app: str) -> str:
    """``deploy-ctl`` -> ``DEPLOY_CTL``: the prefix of the app's own variables."""
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in app.upper())


class InitOptions:
    """The arguments of ``init()``, validated: a bad one is the only loud failure we allow."""

    __slots__ = (
        "app",
        "ask_share",
        "ci_budget_s",
        "consent",
        "enabled",
        "endpoint",
        "fields",
        "inject_command",
        "notice",
        "opt_out_env",
        "policy_url",
        "state_dir",
        "version",
    )

    def __init__(
        self,
        app: str,
        version: str = "unknown",
        endpoint: str | None = None,
        consent: str = "notice",
        fields: Mapping[str, str] | None = None,
        enabled: bool | None = None,
        opt_out_env: Sequence[str] = (),
        ask_share: float = 1.0,
        ci_budget_s: float | None = None,
        inject_command: bool = True,
        notice: str | None = None,
        policy_url: str | None = None,
        state_dir: str | None = None,
    ) -> None:
        self.app = app
        self.version = version
        self.endpoint = endpoint
        self.consent = consent
        self.fields: Mapping[str, str] = {} if fields is None else fields
        self.enabled = enabled
        self.opt_out_env = opt_out_env
        self.ask_share = ask_share
        self.ci_budget_s = ci_budget_s
        self.inject_command = inject_command
        self.notice = notice
        self.policy_url = policy_url
        self.state_dir = state_dir
        self._validate()

    def _validate(self) -> None:
        if not _valid_app_name(self.app):
            raise ValueError(
                f"otel_cli_telemetry.init(app=...) must be a short name of letters, digits, "
                f"'.', '_' or '-' (got {self.app!r})"
            )
        if not isinstance(self.version, str):
            raise TypeError(f"init(version=...) must be a str, got {type(self.version).__name__}")
        if self.consent not in CONSENT_MODES:
            raise ValueError(
                f"init(consent=...) must be one of {CONSENT_MODES}, got {self.consent!r}"
            )
        if self.endpoint is not None and (
            not isinstance(self.endpoint, str)
            or not self.endpoint.startswith(("http://", "https://"))
        ):
            raise ValueError(f"init(endpoint=...) must be an http(s) URL, got {self.endpoint!r}")
        if not isinstance(self.fields, Mapping):
            raise TypeError("init(fields=...) must map attribute names to descriptions")
        for key, description in self.fields.items():
            if not _valid_field_name(key):
                raise ValueError(f"init(fields=...): {key!r} is not a valid attribute name")
            if key in BUILTIN_SPAN_ATTRIBUTES or key in BUILTIN_RESOURCE_ATTRIBUTES:
                raise ValueError(f"init(fields=...): {key!r} is a built-in field")
            if not isinstance(description, str) or not description.strip():
                raise ValueError(f"init(fields=...): {key!r} needs a description (for the policy)")
        if self.enabled not in (None, True, False):
            raise TypeError("init(enabled=...) must be True, False or None")
        if isinstance(self.opt_out_env, str) or not all(
            isinstance(v, str) for v in self.opt_out_env
        ):
            raise TypeError("init(opt_out_env=...) must be a sequence of variable names")
        if not isinstance(self.ask_share, (int, float)) or not 0.0 <= self.ask_share <= 1.0:
            raise ValueError(f"init(ask_share=...) must be within 0..1, got {self.ask_share!r}")
        if self.ci_budget_s is not None and (
            not isinstance(self.ci_budget_s, (int, float)) or not 0 <= self.ci_budget_s <= 60
        ):
            raise ValueError(
                f"init(ci_budget_s=...) must be within 0..60 s, got {self.ci_budget_s!r}"
            )


class Settings:
    """The resolved configuration for this process.

    - ``enabled``: consent; records may leave the machine. ``decided_by``: which source said so.
    - ``show_notice``/``ask``: show the one-time notice / ask the question on this run.
    - ``debug``: print records to stderr, send nothing. ``log_path``: append every record there.
    - ``endpoint``: OTLP base URL, or None for local-only (records kept in the history file).
    """

    __slots__ = (
        "agent",
        "ask",
        "ci",
        "ci_budget_s",
        "debug",
        "decided_by",
        "enabled",
        "endpoint",
        "log_path",
        "options",
        "paths",
        "protocol",
        "schema",
        "show_notice",
    )

    def __init__(
        self,
        *,
        options: InitOptions,
        schema: Schema,
        paths: Paths,
        enabled: bool,
        decided_by: str,
        show_notice: bool,
        ask: bool,
        debug: bool,
        log_path: str | None,
        endpoint: str | None,
        protocol: str,
        ci: str | None,
        agent: str | None,
        ci_budget_s: float,
    ) -> None:
        self.options = options
        self.schema = schema
        self.paths = paths
        self.enabled = enabled
        self.decided_by = decided_by
        self.show_notice = show_notice
        self.ask = ask
        self.debug = debug
        self.log_path = log_path
        self.endpoint = endpoint
        self.protocol = protocol
        self.ci = ci
        self.agent = agent
        self.ci_budget_s = ci_budget_s

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return Settings(**values)

    @property
    def app(self) -> str:
        """The app's name."""
        return self.options.app

    def declaration(self) -> dict[str, Any]:
        """The app's declared fields and consent options, as saved for the admin command
        (``gate.state.save_declaration``) and compared to detect a change."""
        options = self.options
        return {
            "version": self.schema.version,
            "fields": dict(self.schema.fields),
            "consent": options.consent,
            "opt_out_env": list(options.opt_out_env),
            "ask_share": options.ask_share,
            "endpoint": options.endpoint,
            "policy_url": options.policy_url,
            "app_version": options.version,
        }

    @property
    def capture(self) -> bool:
        """Whether records are built at all: to send, print or log."""
        return self.enabled or self.debug or self.log_path is not None

    @property
    def send(self) -> bool:
        """Whether records are spooled for delivery or kept in the local history."""
        return self.enabled and not self.debug


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def resolve_endpoint(explicit: str | None, environ: Mapping[str, str]) -> str | None:
    """The OTLP base URL: explicit > OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / _ENDPOINT > None."""
    if explicit:
        return explicit
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def resolve_protocol(environ: Mapping[str, str]) -> str:
    """``grpc`` or ``http/protobuf`` (the default, unlike the SDK's: no grpc import needed)."""
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = environ.get(name, "").strip().lower()
        if value:
            return "grpc" if value == "grpc" else "http/protobuf"
    return "http/protobuf"


def in_ask_share(installation_id: str, share: float) -> bool:
    """Deterministic: the same installation is always in or out of the asked share."""
    return int(installation_id[:8], 16) / 0xFFFFFFFF < share


def resolve(
    options: InitOptions,
    environ: Mapping[str, str],
    *,
    interactive: bool,
) -> Settings:
    """Resolve every setting; see the module docstring for the order."""
    prefix = env_prefix(options.app)
    paths = Paths.for_app(options.app, options.state_dir)
    schema = Schema(options.app, dict(options.fields))
    ci = detect_ci(environ)
    enabled, decided_by, show_notice, ask = _decide(
        options,
        environ,
        prefix,
        paths,
        schema,
        ci=ci,
        interactive=interactive,
    )
    log_path = environ.get(f"{prefix}_TELEMETRY_LOG", "").strip() or None
    budget = options.ci_budget_s
    if budget is None:
        try:
            budget = float(environ.get(f"{prefix}_TELEMETRY_CI_BUDGET", DEFAULT_CI_BUDGET_S))
        except ValueError:
            budget = DEFAULT_CI_BUDGET_S
    return Settings(
        options=options,
        schema=schema,
        paths=paths,
        enabled=enabled,
        decided_by=decided_by,
        show_notice=show_notice,
        ask=ask,
        debug=_flag(environ.get(f"{prefix}_TELEMETRY_DEBUG")) is True,
        log_path=log_path,
        endpoint=resolve_endpoint(options.endpoint, environ),
        protocol=resolve_protocol(environ),
        ci=ci,
        agent=detect_agent(environ),
        ci_budget_s=max(0.0, min(float(budget), 60.0)),
    )


def _decide(
    options: InitOptions,
    environ: Mapping[str, str],
    prefix: str,
    paths: Paths,
    schema: Schema,
    *,
    ci: str | None,
    interactive: bool,
) -> tuple[bool, str, bool, bool]:
    """(enabled, decided_by, show_notice, ask), first matching source wins.

    The state file is read only when no argument or variable decided: a run switched off
    from the environment touches no file (and imports no JSON parser).
    """
    if options.enabled is not None:
        return options.enabled, "init(enabled=...) argument", False, False
    app_switch = _flag(environ.get(f"{prefix}_TELEMETRY"))
    if app_switch is not None:
        return app_switch, f"{prefix}_TELEMETRY={environ[f'{prefix}_TELEMETRY']}", False, False
    for name in options.opt_out_env:
        value = environ.get(name, "").strip()
        if value and _flag(value) is not False:
            return False, f"{name} is set", False, False
    if _flag(environ.get("DO_NOT_TRACK")) is True:
        return False, "DO_NOT_TRACK is set", False, False
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False, "OTEL_SDK_DISABLED=true", False, False

    from .gate.state import DENIED, GRANTED, State

    state = State.load(paths)
    if state.consent == DENIED:
        how = "declined at the prompt" if state.consent_source == "prompt" else "disabled"
        return False, f"state file: {how}", False, False
    if state.consent == GRANTED and (
        state.consent_source == "command" or state.consent_schema == schema.version
    ):
        how = "accepted at the prompt" if state.consent_source == "prompt" else "enabled"
        return True, f"state file: {how}", False, False

    if options.consent == "notice":
        if state.notice_schema == schema.version:
            return True, "default: on, notice already shown", False, False
        if ci:
            return True, f"default: on in CI ({ci}), no notice", False, False
        return False, "default: notice shown on this run, nothing sent", True, False

    # consent == "ask"
    if ci:
        return False, f"ask: never asked in CI ({ci})", False, False
    if not interactive:
        return False, "ask: no terminal to ask on", False, False
    return False, "ask: waiting for the answer", False, True
