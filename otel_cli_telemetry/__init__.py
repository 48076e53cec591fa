"""otel_cli_telemetry: honest, fast, privacy-safe usage telemetry for Python CLIs.

One call instruments a click, typer or argparse program::

    import otel_cli_telemetry as telemetry

    telemetry.init(app="deployctl", version="1.4.2", fields={
        "deploy.region": telemetry.Enum("target region", values=["eu", "us"]),
        "deploy.functions.added": telemetry.Integer("functions added by the deploy"),
    })

Every command becomes one OpenTelemetry span (delivered later by a detached drainer, never
on the command's time), with phases as child spans and the app's own metrics. Importing this
package loads no OpenTelemetry SDK and does no I/O.
"""

from __future__ import annotations

import time

_IMPORT_STARTED_NS = time.perf_counter_ns()

import os  # noqa: E402
import sys  # noqa: E402

from ._version import __version__  # noqa: E402

TYPE_CHECKING = False  # typing costs a process that has not loaded it ~40 M instructions
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import ModuleType, TracebackType
    from typing import Any, TypeVar

    from .admin.commands import add_telemetry_command, handle_telemetry_command
    from .capture.record import Phase
    from .instruments import Counter, Histogram
    from .schema import (
        Bool,
        Duration,
        Enum,
        Field,
        Identifier,
        Integer,
        Number,
        Text,
        Version,
    )

    F = TypeVar("F", bound=Callable[..., Any])

#: The capture session's module. It is imported only by a run that records (or by the
#: testing plugin, the instrumentor, an admin command): until then nothing can be recording,
#: and the public API below does nothing without importing anything.
_SESSION = "otel_cli_telemetry.capture.session"


def _session() -> ModuleType | None:
    """The session module if a recording run (or the testing plugin) imported it."""
    return sys.modules.get(_SESSION)

#: Public names loaded on first use: most runs never need them (``__getattr__`` below).
_LAZY = {
    "Counter": "instruments",
    "Histogram": "instruments",
    "add_telemetry_command": "admin.commands",
    "handle_telemetry_command": "admin.commands",
    **dict.fromkeys(
        ("Bool", "Duration", "Enum", "Field", "Identifier", "Integer", "Number", "Text", "Version"),
        "schema",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Bool",
    "Counter",
    "Duration",
    "Enum",
    "Field",
    "Histogram",
    "Identifier",
    "Integer",
    "Number",
    "Text",
    "Version",
    "__version__",
    "add_telemetry_command",
    "command",
    "counter",
    "handle_telemetry_command",
    "histogram",
    "init",
    "phase",
    "set_attributes",
    "status",
    "subprocess_env",
]

MAX_PHASES = 64

#: ``init()``'s arguments when the environment switched telemetry off and ``init()`` returned
#: at once (see ``_switch``); :func:`status` resolves them in full when asked.
_deferred: dict[str, Any] | None = None


def init(
    app: str,
    version: str = "unknown",
    *,
    endpoint: str | None = None,
    consent: str = "notice",
    fields: Mapping[str, Field | str | Mapping[str, Any]] | None = None,
    enabled: bool | None = None,
    opt_out_env: Sequence[str] = (),
    ask_share: float = 1.0,
    ci_budget_s: float | None = None,
    inject_command: bool = True,
    notice: str | None = None,
    policy_url: str | None = None,
    state_dir: str | None = None,
    instrument: Sequence[str] = ("click", "typer", "argparse"),
) -> None:
    """Turn on telemetry for this process. Call once, early (before or after importing click).

    Args:
        app: the app's name: ``service.name``, and the prefix of its env vars
            (``deployctl`` -> ``DEPLOYCTL_TELEMETRY=0|1``, ``_DEBUG``, ``_LOG``).
        version: the app's version (``service.version``): PEP 440, SemVer or ``unknown``;
            anything else is sent (and stored) as ``<invalid-version>``.
        endpoint: OTLP base URL; else ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``; else records
            stay on this machine (``otel-cli-telemetry --app NAME report`` shows them).
        consent: ``"notice"`` (on, after a one-time notice; nothing is sent on that run) or
            ``"ask"`` (off until the user says yes at a prompt; only on a terminal, never in CI).
        fields: declared custom attributes, name -> kind: ``telemetry.Enum("desc",
            values=[...])``, ``Identifier``, ``Integer``, ``Number``, ``Bool``, ``Version``,
            ``Duration`` or ``Text`` (free text, scrubbed), or a bare description string (an
            identifier; ints, floats and bools pass as they are). Keys follow the names
            grammar. Undeclared keys are dropped; values that fail their kind are replaced.
        enabled: force on/off for this run (e.g. from ``--analytics``/``--no-analytics``).
        opt_out_env: extra env vars that turn telemetry off when set (``MANTIL_NO_EVENTS``).
        ask_share: with ``"ask"``, the share of installations asked (deterministic per install).
        ci_budget_s: in CI, how long delivery may take in-process (default 2 s).
        inject_command: add a ``telemetry`` subcommand to click/typer root groups.
        notice: replace the default notice text. policy_url: link shown in the notice.
        state_dir: where our files live (default: the app's platformdirs user state dir).
        instrument: which frameworks to patch.

    Raises:
        ValueError, TypeError: for bad arguments (the only errors this SDK ever raises).
        When the environment switches telemetry off (``<APP>_TELEMETRY=0``, ``DO_NOT_TRACK=1``,
        ...), only ``app`` is checked: such a run reads the environment and nothing else.
    """
    global _deferred
    started = time.perf_counter_ns()
    if _session() is None and not (inject_command and _telemetry_command_wanted(sys.argv)):
        why = _quick_off(app, enabled, opt_out_env)
        if why is not None:
            _deferred = {
                "app": app, "version": version, "endpoint": endpoint, "consent": consent,
                "fields": fields, "enabled": enabled, "opt_out_env": opt_out_env,
                "ask_share": ask_share, "ci_budget_s": ci_budget_s,
                "inject_command": inject_command, "notice": notice,
                "policy_url": policy_url, "state_dir": state_dir, "instrument": instrument,
            }  # fmt: skip
            return
    from ._internal import internal_errors
    from .capture import session
    from .config import InitOptions

    _deferred = None
    options = InitOptions(
        app=app,
        version=version,
        endpoint=endpoint,
        consent=consent,
        fields=dict(fields or {}),
        enabled=enabled,
        opt_out_env=tuple(opt_out_env),
        ask_share=ask_share,
        ci_budget_s=ci_budget_s,
        inject_command=inject_command,
        notice=notice,
        policy_url=policy_url,
        state_dir=state_dir,
    )
    unknown = set(instrument) - {"click", "typer", "argparse"}
    if unknown:
        raise ValueError(f"init(instrument=...): unknown framework(s) {sorted(unknown)}")
    with internal_errors("init"):
        if session.settings is not None and session.settings_source != "instrumentor":
            return
        _start(options, tuple(instrument))
        session.add_overhead(time.perf_counter_ns() - started + _IMPORT_NS)


def _quick_off(app: Any, enabled: Any, opt_out_env: Any) -> str | None:
    """Why the environment alone switches this run off (``_switch``), or None: the full
    configuration decides. Arguments it cannot read also leave it to the full path, which
    explains them."""
    if not isinstance(app, str) or not app or not isinstance(opt_out_env, (tuple, list)):
        return None
    if not all(isinstance(name, str) for name in opt_out_env):
        return None
    from ._switch import switched_off

    try:
        return switched_off(app, enabled, opt_out_env, os.environ)
    except Exception:
        return None


def _start(options: Any, frameworks: tuple[str, ...]) -> None:
    from ._internal import internal_errors
    from .capture import session
    from .capture.environment import is_interactive
    from .config import resolve

    settings = resolve(options, os.environ, interactive=is_interactive(sys.stdin, sys.stderr))
    if session.sink is not None:  # otel_cli_telemetry.testing is capturing
        settings = settings.replace(
            enabled=True,
            show_notice=False,
            ask=False,
            debug=False,
            log_path=None,
            decided_by="otel_cli_telemetry.testing",
        )
    previous = session.settings
    if previous is not None and session.settings_source == "instrumentor":
        # The operator's ``opentelemetry-instrument`` is an explicit opt-in; only a source
        # that says more than the defaults (an opt-out, the state file) overrides it.
        if settings.show_notice or settings.ask or settings.decided_by.startswith("default"):
            settings = settings.replace(
                enabled=previous.enabled,
                show_notice=False,
                ask=False,
                decided_by=previous.decided_by,
            )
        session.settings_source = "init"
    if settings.show_notice or settings.ask:
        from .gate.consent import interact

        settings = interact(settings)
    session.settings = settings
    session.inject_root_command = _inject_telemetry_group
    if settings.send:
        from .gate.state import save_declaration as save_schema

        with internal_errors("save schema"):
            save_schema(settings.paths, settings.declaration())
    if not settings.capture:
        # Off for this run: nothing to record, so no exit hooks and no capture patches. click
        # and typer are patched only when the `telemetry` subcommand may be used on this run
        # (a user must be able to ask why it is off, or turn it on); otherwise a run that is
        # off costs no more than reading the environment.
        if options.inject_command and _telemetry_command_wanted(sys.argv):
            from .capture.integrations import registry

            registry.instrument([f for f in frameworks if f in ("click", "typer")])
        return
    from . import pipeline
    from .capture import process
    from .capture.integrations import registry

    pipeline.connect(settings)
    process.install()
    registry.instrument(frameworks)
    session.open_process_record()


def _inject_telemetry_group(command: Any) -> None:
    """Give a click/typer root group the ``telemetry`` subcommand (built by the admin side)."""
    from .admin.injected import inject_telemetry_group

    inject_telemetry_group(command)


def _telemetry_command_wanted(argv: Sequence[str]) -> bool:
    """Whether this command line may run or list the injected ``telemetry`` subcommand."""
    return any(arg in ("telemetry", "--help", "-h", "help") for arg in argv[1:])


def status() -> dict[str, Any]:
    """Whether telemetry is on in this process and which source decided (for apps' own UIs)."""
    from .capture import session

    if session.settings is None and _deferred is not None:
        init(**_deferred)  # switched off from the environment: resolve it all now
    settings = session.settings
    if settings is None:
        return {
            "initialized": False,
            "enabled": False,
            "decided_by": "init() not called",
            "consent": None,
        }
    from .gate.state import State

    return {
        "initialized": True,
        "enabled": settings.enabled,
        "decided_by": settings.decided_by,
        "endpoint": settings.endpoint,
        "debug": settings.debug,
        "ci": settings.ci,
        # The persisted choice, whatever decided this run: "granted" (enable, or yes at the
        # prompt), "denied" (disable, or no at the prompt; permanent), or None (never asked).
        # Apps use it to explain that a per-run switch such as --analytics has no effect.
        "consent": State.load(settings.paths).consent,
    }


def set_attributes(attributes: Mapping[str, Any]) -> None:
    """Set declared attributes on the current command's span (undeclared keys are dropped)."""
    session = _session()
    if session is None:
        return
    from collections.abc import Mapping

    from ._internal import internal_errors

    with internal_errors("set_attributes"):
        record = session.current()
        if record is not None and isinstance(attributes, Mapping):
            record.attributes.update(attributes)


def counter(name: str, *, unit: str = "", description: str = "") -> Counter:
    """A counter for the app's own metric (e.g. ``deploy.bytes_uploaded``, unit ``By``)."""
    from .instruments import Counter

    return Counter(name, unit, description)


def histogram(name: str, *, unit: str = "", description: str = "") -> Histogram:
    """A histogram for the app's own metric (e.g. ``deploy.build.duration``, unit ``s``)."""
    from .instruments import Histogram

    return Histogram(name, unit, description)


class phase:
    """A named part of the command, recorded as a child span; a context manager or decorator.

    An exception leaving the phase marks it with ``error.type`` (its class name, never its
    message); the exception itself propagates unchanged.

    The name is static: it must fit the names grammar (``build``, ``deploy.stacks``) and not
    look like a secret, else ValueError (a programming error; build names from fixed parts).
    """

    def __init__(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        if _deferred is None:  # a run switched off by the environment records no phase
            from .privacy.kinds import check_static_name

            name = check_static_name("phase name", name)
        self.name = name
        self.attributes = dict(attributes or {})
        self._phase: Phase | None = None

    def __enter__(self) -> phase:
        session = _session()
        if session is None:
            return self
        from ._internal import internal_errors
        from .capture.record import Phase, new_span_id

        with internal_errors("phase start"):
            record = session.current()
            if record is not None and len(record.phases) < MAX_PHASES:
                self._phase = Phase(
                    str(self.name),
                    new_span_id(),
                    record.current_parent(),
                    time.time_ns(),
                    attributes=dict(self.attributes),
                )
                record.phases.append(self._phase)
                record.phase_stack.append(self._phase)
                session.open_context(
                    self._phase, record.trace_id, self._phase.span_id, record.sampled
                )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        current = self._phase
        if current is None:
            return
        from ._internal import internal_errors
        from .capture import exits, session

        with internal_errors("phase end"):
            record = session.active
            if current is not None:
                current.end_ns = time.time_ns()
                if exc is not None:
                    current.error_type = exits.classify(exc)[1]
                if record is not None and current in record.phase_stack:
                    record.phase_stack.remove(current)
                    session.close_context(current)
            self._phase = None

    def __call__(self, func: F) -> F:
        from functools import wraps

        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with phase(self.name, self.attributes):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class command:
    """The generic boundary for any other framework: one record for the block or function.

    Ends the record with the exit code and ``error.type`` of however the block is left.
    ``name`` is the command path (``"stage new"``); it is dynamic (it may come from the
    command line), so a component that fails the names grammar or looks like a secret or
    this machine's user or host is sent as ``<redacted>`` and counted, never raised.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._record: Any = None

    def __enter__(self) -> command:
        session = _session()
        if session is None:
            return self
        from ._internal import internal_errors

        with internal_errors("command start"):
            self._record = session.begin("command")
            if self._record is not None:
                self._record.set_command_path(tuple(str(self.name).split()))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._record is None:
            return
        from ._internal import internal_errors
        from .capture import exits, session

        with internal_errors("command end"):
            if self._record is not None:
                code, error_type = exits.classify(exc) if exc is not None else (0, None)
                session.finish(self._record, code, error_type)
            self._record = None

    def __call__(self, func: F) -> F:
        from functools import wraps

        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with command(self.name):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def subprocess_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for a child process that carries this command's trace context.

    A child CLI instrumented with this SDK (or any OpenTelemetry program reading
    ``TRACEPARENT``) then records its spans inside the current command's trace.
    ``TRACESTATE`` (W3C vendor data) travels with the trace it belongs to: the one this
    process was given is passed on unchanged when the command continues that trace, and
    dropped when the command started a trace of its own. It is never recorded.
    """
    env = dict(os.environ if base is None else base)
    session = _session()
    if session is None:
        return env
    from ._internal import internal_errors
    from .capture.record import parse_traceparent

    with internal_errors("subprocess_env"):
        record = session.current()
        if record is not None:
            flags = "01" if record.sampled else "00"
            env["TRACEPARENT"] = f"00-{record.trace_id}-{record.current_parent()}-{flags}"
            upstream = parse_traceparent(os.environ.get("TRACEPARENT"))
            state = os.environ.get("TRACESTATE", "").strip()
            if state and upstream is not None and upstream[0] == record.trace_id:
                env["TRACESTATE"] = state
            else:
                env.pop("TRACESTATE", None)
    return env


#: What importing this package cost, charged to the first record's overhead.
_IMPORT_NS = time.perf_counter_ns() - _IMPORT_STARTED_NS
