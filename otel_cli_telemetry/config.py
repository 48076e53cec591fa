"""All configuration, resolved in one place and one order.

For every setting the first source that says something wins:

1. explicit arguments to :func:`otel_cli_telemetry.init`;
2. the app's own environment variables (``<APP>_TELEMETRY``, ``<APP>_TELEMETRY_DEBUG``,
   ``<APP>_TELEMETRY_LOG``, and any extra opt-out variables the app names);
3. the cross-tool switches ``DO_NOT_TRACK`` and ``OTEL_SDK_DISABLED``, and the standard
   ``OTEL_*`` variables that concern what is sent (exporters, endpoints, protocol, timeouts,
   sampler, metric temporality): each honoured as the OpenTelemetry specification says, or,
   where this SDK cannot, reported by :func:`otel_cli_telemetry.config_check.otel_problems`
   (``doctor`` and ``status`` show it; the user's command never prints anything);
4. the state file (``enable``/``disable``, a prompt's answer, the notice already shown);
5. defaults (``consent="notice"``: on once the notice has been shown; ``"ask"``: off until yes).

:class:`Settings` records which source decided whether telemetry is on (``decided_by``), so
``status`` can explain it. Nothing here writes files or prints.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from . import _switch
from .capture.environment import detect_agent, detect_ci
from .paths import Paths
from .schema import BUILTIN_RESOURCE_ATTRIBUTES, BUILTIN_SPAN_ATTRIBUTES, Schema

TYPE_CHECKING = False  # typing costs a process that has not loaded it ~40 M instructions
if TYPE_CHECKING:
    from typing import Any

CONSENT_MODES = ("notice", "ask")
DEFAULT_CI_BUDGET_S = 2.0

_TRUE = _switch.TRUE
_FALSE = _switch.FALSE
# Checked with string operations, not regexes: compiling one costs ~0.2 ms on every run.
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def _valid_app_name(name: object) -> bool:
    """Letters, digits, ``.``, ``_``, ``-``; starts with a letter or digit; at most 64."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 64
        and name[0] in _ALNUM
        and all(c in _ALNUM or c in "._-" for c in name)
    )


env_prefix = _switch.env_prefix


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
        fields: Mapping[str, Any] | None = None,
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
        self.fields: Mapping[str, Any] = {} if fields is None else fields
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
            raise TypeError("init(fields=...) must map attribute names to kinds or descriptions")
        from .privacy.kinds import check_enum_values, check_static_name
        from .schema import field_from_declaration

        for key, declared in self.fields.items():
            check_static_name("init(fields=...): field key", key)
            if key in BUILTIN_SPAN_ATTRIBUTES or key in BUILTIN_RESOURCE_ATTRIBUTES:
                raise ValueError(f"init(fields=...): {key!r} is a built-in field")
            field = field_from_declaration(key, declared)
            try:
                check_enum_values(field)
            except ValueError as error:
                raise ValueError(f"init(fields=...): {key!r}: {error}") from None
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
        "metrics_temporality",
        "options",
        "paths",
        "protocol",
        "sampler",
        "sampler_ratio",
        "schema",
        "send_metrics",
        "send_traces",
        "service_name",
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
        sampler: str = "parentbased_always_on",
        sampler_ratio: float = 1.0,
        metrics_temporality: str = "delta",
        send_traces: bool = True,
        send_metrics: bool = True,
        service_name: str | None = None,
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
        #: ``OTEL_TRACES_SAMPLER`` (one of :data:`SAMPLERS`) and its ratio argument.
        self.sampler = sampler
        self.sampler_ratio = sampler_ratio
        #: ``"delta"``, ``"cumulative"`` or ``"lowmemory"``: what the metrics exporter sends.
        self.metrics_temporality = metrics_temporality
        #: Whether each signal is exported (``OTEL_{TRACES,METRICS}_EXPORTER`` and endpoints).
        self.send_traces = send_traces
        self.send_metrics = send_metrics
        #: ``service.name``: the app's name, or under ``opentelemetry-instrument`` the
        #: operator's ``OTEL_SERVICE_NAME``. Never the span name or process.executable.name.
        self.service_name = service_name or options.app

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
        from .privacy.kinds import safe_version

        options = self.options
        return {
            "version": self.schema.version,
            "fields": {key: field.as_dict() for key, field in self.schema.fields.items()},
            "consent": options.consent,
            "opt_out_env": list(options.opt_out_env),
            "ask_share": options.ask_share,
            "endpoint": options.endpoint,
            "policy_url": options.policy_url,
            # Never stored raw: a version that fits no version grammar may be anything.
            "app_version": safe_version(options.version),
        }

    @property
    def capture(self) -> bool:
        """Whether records are built at all: to send, print or log."""
        return self.enabled or self.debug or self.log_path is not None

    @property
    def send(self) -> bool:
        """Whether records are spooled for delivery or kept in the local history."""
        return self.enabled and not self.debug


_flag = _switch.flag


SIGNALS = ("TRACES", "METRICS")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
DEFAULT_SAMPLER = "parentbased_always_on"
PROTOCOLS = ("http/protobuf", "grpc")
TEMPORALITIES = ("delta", "cumulative", "lowmemory")
#: This SDK's default, where the specification's is ``cumulative``: a short-lived CLI keeps
#: no running totals in memory; each delivery is one delta window (see docs/configuration.md).
DEFAULT_TEMPORALITY = "delta"
#: Exporter names that mean "send over OTLP" (``otlp`` and the Python SDK's entry points).
_OTLP_EXPORTERS = frozenset({"otlp", "otlp_proto_http", "otlp_proto_grpc"})
DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 10.0
MIN_TIMEOUT_S = 0.2


def _exporter_names(environ: Mapping[str, str], signal: str) -> list[str]:
    raw = environ.get(f"OTEL_{signal}_EXPORTER", "")
    return [n.strip().lower() for n in raw.split(",") if n.strip()]


def exporter_enabled(environ: Mapping[str, str], signal: str) -> bool:
    """Whether ``OTEL_<SIGNAL>_EXPORTER`` lets the signal be sent (unset or ``otlp``: yes;
    ``none``: no, as the specification says; only other names: no, refused in ``doctor``)."""
    names = _exporter_names(environ, signal)
    if not names:
        return True
    if "none" in names:
        return False
    return any(n in _OTLP_EXPORTERS for n in names)


def signal_endpoint(explicit: str | None, environ: Mapping[str, str], signal: str) -> str | None:
    """Where ``signal`` goes: explicit base > per-signal variable (as is) > the base variable."""
    if explicit:
        return explicit
    return (
        environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "").strip()
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        or None
    )


def resolve_endpoint(explicit: str | None, environ: Mapping[str, str]) -> str | None:
    """The endpoint records are spooled for (and the breaker's key), or None: local only.

    explicit > ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` > ``_METRICS_ENDPOINT`` > ``_ENDPOINT``,
    counting only signals whose exporter is not ``none``. Either per-signal variable alone is
    enough: its signal is sent there; the other signal has no endpoint and is not sent
    (``doctor`` says so; the specification's ``localhost`` default is not guessed at).
    """
    if explicit:
        return explicit
    for signal in SIGNALS:
        if not exporter_enabled(environ, signal):
            continue
        value = environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "").strip()
        if value:
            return value
    if not any(exporter_enabled(environ, s) for s in SIGNALS):
        return None
    return environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or None


def resolve_protocol(environ: Mapping[str, str]) -> str:
    """``grpc`` or ``http/protobuf`` (the default, unlike the SDK's: no grpc import needed).

    ``http/json`` and unknown values are sent as ``http/protobuf`` and refused in ``doctor``.
    """
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = environ.get(name, "").strip().lower()
        if value:
            return "grpc" if value == "grpc" else "http/protobuf"
    return "http/protobuf"


def grpc_available() -> bool:
    """Whether the ``grpc`` extra (the SDK's gRPC exporters) is installed. Not on the hot
    path: the drainer and ``doctor``/``status`` ask."""
    import importlib.util

    try:
        return importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is not None
    except (ImportError, ValueError):
        return False


def delivery_protocol(protocol: str) -> str:
    """The protocol delivery uses: ``grpc`` only if the extra is installed, else
    ``http/protobuf`` (opentelemetry-distro sets ``grpc`` by default; records must not wait
    in the spool for an exporter that is not there). ``doctor``/``status`` say so."""
    if protocol == "grpc" and not grpc_available():
        return "http/protobuf"
    return protocol


def resolve_timeout(environ: Mapping[str, str], signal: str) -> float:
    """Per-request timeout in seconds: ``OTEL_EXPORTER_OTLP_<SIGNAL>_TIMEOUT`` >
    ``OTEL_EXPORTER_OTLP_TIMEOUT``, in milliseconds as the specification says, bounded to
    0.2..10 s (default 5 s: the drainer's run is bounded too)."""
    for name in (f"OTEL_EXPORTER_OTLP_{signal}_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        raw = environ.get(name, "").strip()
        if raw:
            try:
                value = float(raw) / 1000.0
            except ValueError:
                continue
            return max(MIN_TIMEOUT_S, min(value, MAX_TIMEOUT_S))
    return DEFAULT_TIMEOUT_S


def resolve_sampler(environ: Mapping[str, str]) -> tuple[str, float]:
    """(sampler, ratio) from ``OTEL_TRACES_SAMPLER`` / ``_ARG``; unknown: the default."""
    name = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() or DEFAULT_SAMPLER
    if name not in SAMPLERS:
        name = DEFAULT_SAMPLER
    ratio = 1.0
    if name.endswith("traceidratio"):
        try:
            ratio = float(environ.get("OTEL_TRACES_SAMPLER_ARG", "1").strip() or "1")
        except ValueError:
            ratio = 1.0
        if not 0.0 <= ratio <= 1.0:
            ratio = 1.0
    return name, ratio


def resolve_metrics_temporality(environ: Mapping[str, str]) -> str:
    """``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE``: ``delta``, ``cumulative`` or
    ``lowmemory`` (case-insensitive); unset or unknown: :data:`DEFAULT_TEMPORALITY`."""
    value = environ.get("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "").strip().lower()
    return value if value in TEMPORALITIES else DEFAULT_TEMPORALITY


#: What ``status`` reports as the deciding source when the launcher turned telemetry on.
LAUNCHER_DECIDED_BY = "opentelemetry-instrument: the operator's opt-in"
#: A file in the app's state dir: the app has run under ``opentelemetry-instrument``, so the
#: admin command explains its consent as the launcher decides it (no notice, no prompt).
LAUNCHER_MARKER = "launched-by-opentelemetry-instrument"


def resource_attributes(environ: Mapping[str, str]) -> dict[str, str]:
    """``OTEL_RESOURCE_ATTRIBUTES`` (``k=v,k=v``, values percent-encoded) as a dict."""
    result: dict[str, str] = {}
    for item in environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            value = value.strip()
            if "%" in value:  # urllib.parse imports re: only when there is work for it
                from urllib.parse import unquote

                value = unquote(value)
            result[key.strip()] = value
    return result


def launched_service_name(environ: Mapping[str, str]) -> str | None:
    """``service.name`` under the launcher: ``OTEL_SERVICE_NAME`` > ``service.name`` in
    ``OTEL_RESOURCE_ATTRIBUTES`` > None (the app name)."""
    explicit = environ.get("OTEL_SERVICE_NAME", "").strip()
    explicit = explicit or resource_attributes(environ).get("service.name", "").strip()
    return explicit[:255] or None


def launcher_decision(environ: Mapping[str, str], app: str, paths: Paths) -> tuple[bool, str]:
    """(enabled, why) for a run under ``opentelemetry-instrument``: on, unless an explicit no
    (``<APP>_TELEMETRY``, ``DO_NOT_TRACK``, ``OTEL_SDK_DISABLED``, ``disable``) says otherwise."""
    prefix = env_prefix(app)
    switch = environ.get(f"{prefix}_TELEMETRY", "").strip().lower()
    if switch in _TRUE or switch in _FALSE:
        return switch in _TRUE, f"{prefix}_TELEMETRY={switch}"
    if environ.get("DO_NOT_TRACK", "").strip().lower() in _TRUE:
        return False, "DO_NOT_TRACK is set"
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False, "OTEL_SDK_DISABLED=true"
    from .gate.state import DENIED, State

    if State.load(paths).consent == DENIED:
        return False, "state file: disabled"
    return True, LAUNCHER_DECIDED_BY


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
    if log_path is not None:
        # Relative to the directory the command was run in, even if the program changes
        # directory before the record is written at exit.
        log_path = os.path.abspath(os.path.expanduser(log_path))
    sampler, ratio = resolve_sampler(environ)
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
        sampler=sampler,
        sampler_ratio=ratio,
        metrics_temporality=resolve_metrics_temporality(environ),
        send_traces=exporter_enabled(environ, "TRACES"),
        send_metrics=exporter_enabled(environ, "METRICS"),
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
