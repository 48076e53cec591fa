"""The record as data: the versioned dict that is scrubbed, logged, spooled and delivered."""

from __future__ import annotations

import os
import sys
from typing import Any

from .._version import __version__
from ..config import Settings
from ..schema import RECORD_VERSION
from . import environment
from .record import CommandRecord

_resource_cache: dict[str, Any] | None = None


def machine_resource() -> dict[str, Any]:
    """The resource attributes that describe this machine (computed once per process)."""
    global _resource_cache
    if _resource_cache is None:
        os_type, os_version = environment.os_type_and_version()
        machine = os.uname().machine if hasattr(os, "uname") else ""
        if not machine:
            import platform

            machine = platform.machine()
        impl = sys.implementation
        _resource_cache = {
            "os.type": os_type,
            "os.version": os_version,
            "host.arch": environment.host_arch(machine),
            "process.runtime.name": impl.name,
            "process.runtime.version": ".".join(str(v) for v in impl.version[:3]),
            "telemetry.sdk.name": "otel_cli_telemetry",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.version": __version__,
        }
    return dict(_resource_cache)


def build(
    record: CommandRecord,
    settings: Settings,
    exit_code: int,
    error_type: str | None,
    end_ns: int,
    installation_id: str,
) -> dict[str, Any]:
    """The raw (not yet redacted) record dict in spool format :data:`RECORD_VERSION`."""
    command = record.command_name()
    app = settings.app
    attributes: dict[str, Any] = dict(record.attributes)
    attributes.update(
        {
            "process.executable.name": app,
            "process.exit.code": exit_code,
            "process.pid": os.getpid(),
            "cli_telemetry.command": command or app,
            "cli_telemetry.flags": sorted(record.flags),
            "process.interactive": environment.is_interactive(sys.stdin, sys.stdout),
            "cli_telemetry.ci.detected": settings.ci is not None,
        }
    )
    if not attributes["cli_telemetry.flags"]:
        del attributes["cli_telemetry.flags"]
    if error_type:
        attributes["error.type"] = error_type
    if settings.ci:
        attributes["cli_telemetry.ci.provider"] = settings.ci
    if settings.agent:
        attributes["cli_telemetry.agent"] = settings.agent
    resource = machine_resource()
    resource.update(
        {
            "service.name": settings.service_name,
            "service.version": settings.options.version,
            # The installation id, under its registered name (semantic conventions, stable).
            "service.instance.id": installation_id,
            "cli_telemetry.schema.version": settings.schema.version,
        }
    )
    data = {
        "v": RECORD_VERSION,
        "app": app,
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "parent_span_id": record.parent_span_id,
        "name": f"{app} {command}" if command else app,
        "start_ns": record.start_ns,
        "end_ns": end_ns,
        "status": "ERROR" if exit_code != 0 else "UNSET",
        "sampled": record.sampled,
        "attributes": attributes,
        "resource": resource,
        "phases": [
            {
                "name": phase.name,
                "span_id": phase.span_id,
                "parent_span_id": phase.parent_span_id,
                "start_ns": phase.start_ns,
                "end_ns": phase.end_ns or end_ns,
                "status": "ERROR" if phase.error_type else "UNSET",
                "attributes": {
                    **phase.attributes,
                    **({"error.type": phase.error_type} if phase.error_type else {}),
                },
            }
            for phase in record.phases
        ],
        "metrics": [
            {
                "name": metric.name,
                "kind": metric.kind,
                "unit": metric.unit,
                "description": metric.description,
                "points": [{"value": value, "attributes": attrs} for value, attrs in metric.points],
            }
            for metric in record.metrics.values()
            if metric.points
        ],
    }
    repaired = repair_strings(data)
    if repaired:
        attributes[INVALID_UTF8_ATTRIBUTE] = repaired
    return data


#: How many captured strings were not valid UTF-8 (and were repaired).
INVALID_UTF8_ATTRIBUTE = "cli_telemetry.sdk.invalid_utf8"


def repair_strings(value: Any) -> int:
    """Make every string (keys too) in ``value`` valid UTF-8, in place; how many changed.

    A command-line argument or file name that is not valid UTF-8 reaches Python as a
    string with lone surrogates (``surrogateescape``): no OTLP encoder can send it (the
    SDK's logs a traceback, and drops the attribute). Done once, here, where the record
    becomes data: each such character becomes U+FFFD, and the record counts the repairs.
    """
    count = 0
    if isinstance(value, dict):
        for key in list(value):
            item = value[key]
            if isinstance(item, str):
                fixed = _valid_utf8(item)
                if fixed is not None:
                    value[key] = fixed
                    count += 1
            elif isinstance(item, (dict, list)):
                count += repair_strings(item)
            elif isinstance(item, tuple):
                items = list(item)
                changed = repair_strings(items)
                if changed:
                    value[key] = items
                    count += changed
            if isinstance(key, str):
                fixed_key = _valid_utf8(key)
                if fixed_key is not None:
                    value[fixed_key] = value.pop(key)
                    count += 1
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                fixed = _valid_utf8(item)
                if fixed is not None:
                    value[index] = fixed
                    count += 1
            elif isinstance(item, (dict, list)):
                count += repair_strings(item)
    return count


def _valid_utf8(text: str) -> str | None:
    """``text`` with lone surrogates replaced by U+FFFD; None when it was valid already."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)
    return None
