"""Zero-code instrumentation: ``opentelemetry-instrument someone-elses-cli ...``.

:class:`CliTelemetryInstrumentor` is registered as the entry point ``cli_telemetry`` in the
``opentelemetry_instrumentor`` group, so the standard launcher loads it (from its
``sitecustomize``) before the CLI's own code runs, and the CLI's click, typer or argparse
commands become records exactly as if its author had called :func:`otel_cli_telemetry.init`.

Configuration comes from the standard variables only, because the CLI's code is not ours:

- app name (``process.executable.name``, the span name, the state dir and the prefix of
  the ``<APP>_TELEMETRY*`` variables): the executable's base name
  (``/venv/bin/sqlite-utils`` -> ``sqlite-utils``), sanitised;
- ``service.name``: ``OTEL_SERVICE_NAME``, else ``service.name`` in
  ``OTEL_RESOURCE_ATTRIBUTES``, else the app name (no other resource attribute is sent);
- version: ``service.version`` in ``OTEL_RESOURCE_ATTRIBUTES``, else the version of the
  distribution that installed the console script, else ``unknown``;
- endpoint and protocol: ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` / ``_PROTOCOL`` / ``_HEADERS``.

Consent: running a program under ``opentelemetry-instrument`` is the operator's explicit
opt-in, so telemetry is on with no notice and no prompt. It still yields to an explicit "no":
``<APP>_TELEMETRY=0``, ``DO_NOT_TRACK=1``, ``OTEL_SDK_DISABLED=true``, or
``otel-cli-telemetry --app APP disable`` (the state file). No ``telemetry`` subcommand is
injected: the CLI is someone else's.

Only the command the launcher started is recorded: it sets ``OTEL_CLI_TELEMETRY_LAUNCHED_BY``
in its environment, and a Python child process (which inherits the launcher's
``sitecustomize``) sees it and records nothing, writes nothing, and creates no state
directory. A child that calls :func:`otel_cli_telemetry.init` itself is its own author's
instrumented CLI and records as usual.

Delivery is this SDK's own (spool and detached drainer); nothing goes through the global
OpenTelemetry providers, so a configurator (``opentelemetry-distro``) cannot double-send our
records. ``OTEL_{TRACES,METRICS}_EXPORTER=none`` turn a signal off for this SDK too, as the
specification says; docs/configuration.md says what to set with ``opentelemetry-distro``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from ._internal import debug, internal_errors
from .config import launched_service_name as service_name
from .config import resource_attributes

#: What ``status`` reports as the deciding source when the launcher turned telemetry on.
DECIDED_BY = "opentelemetry-instrument: the operator's opt-in"  # = config.LAUNCHER_DECIDED_BY
FALLBACK_APP = "python-cli"

_INVALID = re.compile(r"[^A-Za-z0-9._-]+")
#: Console scripts and modules that are this SDK's own processes (drainer, admin command):
#: instrumenting them would record the drainer as a command, and spawn drainers forever.
_OWN_MODULE = "otel_cli_telemetry"
#: Set by the launched command for its descendants: ``<pid>`` of the process that records.
#: A Python child inherits the launcher's ``sitecustomize`` (through ``PYTHONPATH``); it is
#: part of the command being recorded, not a command of its own, so it records nothing.
LAUNCHED_BY_ENV = "OTEL_CLI_TELEMETRY_LAUNCHED_BY"
_OWN_SCRIPT = "otel-cli-telemetry"


def sanitize_app_name(raw: str) -> str:
    """A valid ``init(app=...)`` name from anything (``"My CLI.py"`` -> ``My-CLI``); one that
    looks like a secret or personal data becomes the fallback name."""
    name = re.split(r"[\\/]", raw.strip().rstrip("/\\"))[-1]  # either separator, any OS
    for suffix in (".py", ".pyw", ".exe", ".pyz"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    name = _INVALID.sub("-", name).lstrip("._-")[:64].rstrip("._-")
    if name:
        from .privacy.kinds import secret_finding

        if secret_finding(name):  # a token in OTEL_SERVICE_NAME must not name files or spans
            return FALLBACK_APP
    return name or FALLBACK_APP


def program_name(argv: Sequence[str], orig_argv: Sequence[str]) -> str:
    """The program's name as run: the script's base name, or the module of ``python -m``.

    In ``sitecustomize`` (where the launcher loads us) ``sys.argv[0]`` is already the script,
    but is still ``-m``/``-c`` for those forms; ``sys.orig_argv`` has the module's name.
    """
    first = argv[0] if argv else ""
    if first and first not in ("-m", "-c", "-"):
        return first
    if first == "-m" and "-m" in orig_argv:
        index = list(orig_argv).index("-m")
        if index + 1 < len(orig_argv):
            return orig_argv[index + 1].split(".")[0]
    return ""


def is_own_process(argv: Sequence[str], orig_argv: Sequence[str]) -> bool:
    """Whether this process is one of the SDK's own (the drainer, the admin command)."""
    args = list(orig_argv)
    if "-m" in args:
        index = args.index("-m")
        if index + 1 < len(args) and args[index + 1].split(".")[0] == _OWN_MODULE:
            return True
    first = os.path.basename(argv[0]) if argv else ""
    return first in (_OWN_SCRIPT, f"{_OWN_SCRIPT}.exe")


def is_launched_child(environ: Mapping[str, str]) -> bool:
    """Whether an ancestor process is the command ``opentelemetry-instrument`` records.

    The same pid (a program that ``os.exec``-s itself) is still the command itself.
    """
    marker = environ.get(LAUNCHED_BY_ENV, "").strip()
    return bool(marker) and marker != str(os.getpid())


def app_name(environ: Mapping[str, str], argv: Sequence[str], orig_argv: Sequence[str]) -> str:
    """The program's name (``process.executable.name``, the span name, the state dir).

    ``environ`` is accepted for compatibility and not read: ``OTEL_SERVICE_NAME`` names the
    service (:func:`service_name`), never the program.
    """
    return sanitize_app_name(program_name(argv, orig_argv))


def console_script(script: str) -> tuple[str, str, str] | None:
    """(version, module, attribute) of the console script ``script``'s installed entry point.

    Reads installed metadata (a few ms), once, and only under the instrumentor.
    """
    from importlib import metadata

    name = os.path.basename(script)
    for dist in metadata.distributions():
        for entry in dist.entry_points:
            if entry.group in ("console_scripts", "gui_scripts") and entry.name == name:
                return str(dist.version), entry.module, entry.attr or ""
    return None


def console_script_version(script: str) -> str | None:
    """The version of the installed distribution that provides console script ``script``."""
    found = console_script(script)
    return found[0] if found else None


def watch_exits(
    argv: Sequence[str], orig_argv: Sequence[str], entry: tuple[str, str, str] | None
) -> None:
    """Note a ``raise SystemExit(n)`` that ends the program, where it leaves the program.

    Nothing calls ``sys.exit`` for it, so the hooks would record 0. The program's boundary
    is known under the launcher: the console script's entry point (``pyflakes.api:main``
    raises ``SystemExit(True)``), or ``runpy._run_module_as_main`` for ``python -m pkg``
    (the interpreter looks that function up after ``sitecustomize`` has run).
    """
    from .capture import patching, process

    if argv and argv[0] == "-m" and "-m" in orig_argv:
        import runpy

        process.note_exits_of(runpy, "_run_module_as_main")
        return
    if entry is None or not entry[1] or not entry[2]:
        return
    module_name, attribute = entry[1], entry[2]

    def wrap_entry_point(module: Any) -> None:
        with internal_errors("entry point exit watch"):
            owner: Any = module
            *path, name = attribute.split(".")
            for part in path:
                owner = getattr(owner, part)
            process.note_exits_of(owner, name)

    patching.when_imported(module_name, wrap_entry_point)


def decide(environ: Mapping[str, str], app: str, state_dir: str | None) -> tuple[bool, str]:
    """(enabled, why): on by the launcher, unless something explicit says no."""
    from .config import launcher_decision
    from .paths import Paths

    return launcher_decision(environ, app, Paths.for_app(app, state_dir))


def _mark_launched() -> None:
    """Leave :data:`~otel_cli_telemetry.config.LAUNCHER_MARKER` in the app's state dir (once),
    so ``status`` and ``doctor`` explain consent as the launcher decides it."""
    from .capture import session
    from .config import LAUNCHER_MARKER

    settings = session.settings
    if settings is None or not settings.send:
        return
    marker = os.path.join(settings.paths.root, LAUNCHER_MARKER)
    if not os.path.exists(marker) and os.path.isdir(settings.paths.root):
        with open(marker, "a", encoding="utf-8"):
            pass


def _label_decision(why: str) -> None:
    """Record in the session which source decided (``status`` shows it)."""
    from .capture import session

    if session.settings is not None:
        session.settings = session.settings.replace(decided_by=why)


def _name_service(name: str | None) -> None:
    """Set ``service.name`` to the operator's ``OTEL_SERVICE_NAME`` (never the app name)."""
    from .capture import session

    if name and session.settings is not None:
        session.settings = session.settings.replace(service_name=name)


class CliTelemetryInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments whichever of click, typer and argparse the program uses, with no code change.

    ``instrument()`` accepts optional overrides for programmatic use: ``app``, ``version``,
    ``fields``, ``endpoint``, ``state_dir``. ``tracer_provider`` and ``meter_provider`` are
    accepted and ignored: records are delivered by this SDK's drainer, not by global providers.
    If :func:`otel_cli_telemetry.init` was called before ``instrument()``, its settings stand.
    Under the launcher the instrumentor runs first; a program that then calls ``init()``
    itself replaces the launcher's app name, version and fields with its own declaration
    (running under the launcher still counts as the operator's opt-in).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        """None: the frameworks are patched lazily, only if the program imports them."""
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        with internal_errors("instrumentor"):
            self._start(**kwargs)

    def _start(self, **kwargs: Any) -> None:
        import otel_cli_telemetry as telemetry

        from .capture import session

        if session.settings is not None:
            debug("instrumentor: init() was already called; its settings stand")
            return
        argv = list(sys.argv)
        orig_argv = list(getattr(sys, "orig_argv", argv))
        if is_own_process(argv, orig_argv):
            return
        environ = os.environ
        if is_launched_child(environ):
            debug("instrumentor: a child process of the recorded command; not recorded")
            return
        environ[LAUNCHED_BY_ENV] = str(os.getpid())
        app = (
            sanitize_app_name(kwargs["app"])
            if kwargs.get("app")
            else app_name(environ, argv, orig_argv)
        )
        version = kwargs.get("version") or resource_attributes(environ).get("service.version")
        entry = None
        if argv and argv[0] not in ("-m", "-c", "-"):
            with internal_errors("instrumentor entry point"):
                entry = console_script(argv[0])
        version = version or (entry[0] if entry else None)
        state_dir = kwargs.get("state_dir")
        enabled, why = decide(environ, app, state_dir)
        telemetry.init(
            app=app,
            version=str(version or "unknown"),
            endpoint=kwargs.get("endpoint"),
            fields=kwargs.get("fields"),
            enabled=enabled,
            inject_command=False,
            state_dir=state_dir,
        )
        session.settings_source = "instrumentor"
        _label_decision(why)
        _name_service(service_name(environ))
        with internal_errors("launcher marker"):
            _mark_launched()
        if session.capturing():
            with internal_errors("exit watch"):
                watch_exits(argv, orig_argv, entry)

    def _uninstrument(self, **kwargs: Any) -> None:
        """Remove every patch and hook, and forget the session (the open record is dropped)."""
        with internal_errors("uninstrument"):
            from .capture import process, session
            from .capture.integrations import registry

            registry.uninstrument_all()
            process.uninstall()
            session.reset_for_tests()
            if os.environ.get(LAUNCHED_BY_ENV) == str(os.getpid()):
                del os.environ[LAUNCHED_BY_ENV]
