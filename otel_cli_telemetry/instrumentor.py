"""Zero-code instrumentation: ``opentelemetry-instrument someone-elses-cli ...``.

:class:`CliTelemetryInstrumentor` is registered as the entry point ``cli_telemetry`` in the
``opentelemetry_instrumentor`` group, so the standard launcher loads it (from its
``sitecustomize``) before the CLI's own code runs, and the CLI's click, typer or argparse
commands become records exactly as if its author had called :func:`otel_cli_telemetry.init`.

Configuration comes from the standard variables only, because the CLI's code is not ours:

- app name (``service.name`` and the prefix of the ``<APP>_TELEMETRY*`` variables):
  ``OTEL_SERVICE_NAME``, else ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``, else the
  executable's base name (``/venv/bin/sqlite-utils`` -> ``sqlite-utils``), sanitised;
- version: ``service.version`` in ``OTEL_RESOURCE_ATTRIBUTES``, else the version of the
  distribution that installed the console script, else ``unknown``;
- endpoint and protocol: ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` / ``_PROTOCOL`` / ``_HEADERS``.

Consent: running a program under ``opentelemetry-instrument`` is the operator's explicit
opt-in, so telemetry is on with no notice and no prompt. It still yields to an explicit "no":
``<APP>_TELEMETRY=0``, ``DO_NOT_TRACK=1``, ``OTEL_SDK_DISABLED=true``, or
``otel-cli-telemetry --app APP disable`` (the state file). No ``telemetry`` subcommand is
injected: the CLI is someone else's.

Delivery is this SDK's own (spool and detached drainer); nothing goes through the global
OpenTelemetry providers, so a configurator (``opentelemetry-distro``) cannot double-send our
records. See docs/configuration.md for ``OTEL_TRACES_EXPORTER=none`` in that case.
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
from .gate.launcher import DECIDED_BY, decide  # noqa: F401 (DECIDED_BY: re-exported)

FALLBACK_APP = "python-cli"

_INVALID = re.compile(r"[^A-Za-z0-9._-]+")
#: Console scripts and modules that are this SDK's own processes (drainer, admin command):
#: instrumenting them would record the drainer as a command, and spawn drainers forever.
_OWN_MODULE = "otel_cli_telemetry"
_OWN_SCRIPT = "otel-cli-telemetry"


def resource_attributes(environ: Mapping[str, str]) -> dict[str, str]:
    """``OTEL_RESOURCE_ATTRIBUTES`` (``k=v,k=v``, values percent-encoded) as a dict."""
    from urllib.parse import unquote

    result: dict[str, str] = {}
    for item in environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            result[key.strip()] = unquote(value.strip())
    return result


def sanitize_app_name(raw: str) -> str:
    """A valid ``init(app=...)`` name from anything (``"My CLI.py"`` -> ``My-CLI``)."""
    name = re.split(r"[\\/]", raw.strip().rstrip("/\\"))[-1]  # either separator, any OS
    for suffix in (".py", ".pyw", ".exe", ".pyz"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    name = _INVALID.sub("-", name).lstrip("._-")[:64].rstrip("._-")
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


def app_name(environ: Mapping[str, str], argv: Sequence[str], orig_argv: Sequence[str]) -> str:
    """``OTEL_SERVICE_NAME`` > ``service.name`` resource attribute > the program's name."""
    explicit = environ.get("OTEL_SERVICE_NAME", "").strip()
    explicit = explicit or resource_attributes(environ).get("service.name", "")
    return sanitize_app_name(explicit or program_name(argv, orig_argv))


def console_script_version(script: str) -> str | None:
    """The version of the installed distribution that provides console script ``script``.

    Reads installed metadata (a few ms), once, and only under the instrumentor.
    """
    from importlib import metadata

    name = os.path.basename(script)
    for dist in metadata.distributions():
        for entry in dist.entry_points:
            if entry.group in ("console_scripts", "gui_scripts") and entry.name == name:
                version: str = dist.version
                return version
    return None


def _label_decision(why: str) -> None:
    """Record in the session which source decided (``status`` shows it)."""
    from .capture import session

    if session.settings is not None:
        session.settings = session.settings.replace(decided_by=why)


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
        app = (
            sanitize_app_name(kwargs["app"])
            if kwargs.get("app")
            else app_name(environ, argv, orig_argv)
        )
        version = kwargs.get("version") or resource_attributes(environ).get("service.version")
        if not version and argv and argv[0] not in ("-m", "-c", "-"):
            with internal_errors("instrumentor version"):
                version = console_script_version(argv[0])
        state_dir = kwargs.get("state_dir")
        enabled, why = decide(environ, app, state_dir)
        session.settings_source = "instrumentor"  # before init(): it saves how the app ran
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

    def _uninstrument(self, **kwargs: Any) -> None:
        """Remove every patch and hook, and forget the session (the open record is dropped)."""
        with internal_errors("uninstrument"):
            from .capture import process, session
            from .capture.integrations import registry

            registry.uninstrument_all()
            process.uninstall()
            session.reset_for_tests()
