"""The data schema: every field the SDK can send, built-in or declared by the app.

This module is the single source of the allowlist. Capture drops any key not listed here
(fail closed), the ``schema`` command prints it, the collector's allowlist is generated
from it, and the schema version that consent is tied to is a digest of it.

Importing this module is cheap (no OpenTelemetry import); it runs on the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Version of the record format shared by capture (which writes it) and delivery (which
#: reads it from the spool); the drainer refuses (and counts) other versions.
RECORD_VERSION = 1

#: The semantic-conventions version whose names the built-in attributes follow, published as
#: the schema URL of every resource and scope we send (``process.*``, ``error.type``,
#: ``service.*``, ``os.*``, ``host.arch``; ``cli.*`` are this SDK's own).
SEMCONV_VERSION = "1.44.0"
SEMCONV_SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"

#: Bumped when the built-in fields below change; part of every schema version.
BUILTIN_SCHEMA_REVISION = "1"

#: Span attributes every command span may carry, with what they mean.
BUILTIN_SPAN_ATTRIBUTES: Mapping[str, str] = {
    "process.executable.name": "the app's name (not the interpreter's)",
    "process.exit.code": "the exit code the command ended with",
    "process.pid": "the process id (meaningless outside the machine)",
    "error.type": "when the exit code is not 0: usage_error, interrupted, terminated, "
    "exit, or the qualified class name of the uncaught exception; never a message",
    "cli.command": "the command path below the program name, e.g. 'deploy' or 'stage new'",
    "cli.flags": "names of the options given on the command line; never their values",
    "cli.interactive": "whether stdin and stdout are a terminal",
    "cli.ci": "whether the command runs in CI",
    "cli.ci.provider": "which CI system, when detected (github_actions, gitlab_ci, ...)",
    "cli.agent": "which AI coding agent runs the command, when detected",
    "cli.telemetry.overhead_ms": "the SDK's own in-process cost for this command, in ms",
    "cli.telemetry.dropped": "records dropped since the last delivered one (caps, errors)",
    "cli.telemetry.invalid_utf8": "how many captured strings were not valid UTF-8 (e.g. a "
    "non-UTF-8 argument); their invalid characters were replaced with U+FFFD",
}

#: Resource attributes; anything else (including OTEL_RESOURCE_ATTRIBUTES) is dropped.
BUILTIN_RESOURCE_ATTRIBUTES: Mapping[str, str] = {
    "service.name": "the app's name",
    "service.version": "the app's version",
    "os.type": "linux, darwin, windows, ...",
    "os.version": "the OS release",
    "host.arch": "amd64, arm64, ... (semantic-convention values)",
    "process.runtime.name": "cpython, pypy, ...",
    "process.runtime.version": "the interpreter's version",
    "cli.installation.id": "a random uuid4 made on first run; identifies nothing else",
    "service.instance.id": "the same random uuid4, under its semantic-conventions name",
    "cli.telemetry.schema_version": "the version of this schema (changes re-show the notice)",
    "telemetry.sdk.name": "otel_cli_telemetry",
    "telemetry.sdk.language": "python",
    "telemetry.sdk.version": "the SDK's version",
}

#: The built-in metric and the attributes its points carry.
COMMAND_DURATION_METRIC = "cli.command.duration"
BUILTIN_METRIC_ATTRIBUTES: tuple[str, ...] = ("cli.command", "process.exit.code", "error.type")

#: Phase (child) spans carry only these built-in attributes, plus declared ones.
BUILTIN_PHASE_ATTRIBUTES: tuple[str, ...] = ("error.type",)


def _fnv1a_32(data: bytes) -> int:
    """The 32-bit FNV-1a hash of ``data``."""
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


class MetricSpec:
    """A metric the app created with ``counter()`` or ``histogram()``."""

    __slots__ = ("description", "kind", "name", "unit")

    def __init__(self, name: str, kind: str, unit: str = "", description: str = "") -> None:
        self.name = name
        self.kind = kind  # "counter" | "histogram"
        self.unit = unit
        self.description = description

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetricSpec) and (
            (self.name, self.kind, self.unit, self.description)
            == (other.name, other.kind, other.unit, other.description)
        )

    def __hash__(self) -> int:
        return hash((self.name, self.kind, self.unit))

    def __repr__(self) -> str:
        return f"MetricSpec({self.name!r}, {self.kind!r}, {self.unit!r}, {self.description!r})"


class Schema:
    """Everything one app can send: built-in fields plus the app's declarations.

    (Plain classes rather than dataclasses here and in the rest of the hot path: a dataclass
    costs ~0.5 ms to define at import, and the whole hot path has a 10 ms budget.)
    """

    __slots__ = ("app", "fields", "metrics")

    def __init__(
        self,
        app: str,
        fields: Mapping[str, str] | None = None,
        metrics: tuple[MetricSpec, ...] = (),
    ) -> None:
        self.app = app
        self.fields: Mapping[str, str] = dict(fields or {})
        self.metrics = tuple(metrics)

    @property
    def span_attributes(self) -> frozenset[str]:
        """Keys allowed on command and phase spans."""
        return frozenset(BUILTIN_SPAN_ATTRIBUTES) | frozenset(self.fields)

    @property
    def metric_attributes(self) -> frozenset[str]:
        """Keys allowed on metric points (built-in dimensions plus declared fields)."""
        return frozenset(BUILTIN_METRIC_ATTRIBUTES) | frozenset(self.fields)

    @property
    def resource_attributes(self) -> frozenset[str]:
        """Keys allowed on the resource."""
        return frozenset(BUILTIN_RESOURCE_ATTRIBUTES)

    @property
    def metric_names(self) -> frozenset[str]:
        """Names of every metric the app can send."""
        return frozenset({COMMAND_DURATION_METRIC}) | {m.name for m in self.metrics}

    @property
    def version(self) -> str:
        """A digest of the declared fields; consent and the notice are tied to it.

        Metrics are left out on purpose: they may be created lazily inside a command, and
        their points carry numbers plus declared fields only, so they add no new kind of data.
        FNV-1a detects a change; it needs no security, and no import (hashlib costs 3 ms).
        """
        digest = _fnv1a_32("".join(f"f:{key}\n" for key in sorted(self.fields)).encode())
        return f"{BUILTIN_SCHEMA_REVISION}.{digest:08x}"

    def as_dict(self) -> dict[str, object]:
        """The schema as plain data, for ``schema --json`` and the generated policy."""
        return {
            "app": self.app,
            "schema_version": self.version,
            "span_attributes": {**BUILTIN_SPAN_ATTRIBUTES, **self.fields},
            "resource_attributes": dict(BUILTIN_RESOURCE_ATTRIBUTES),
            "metrics": {
                COMMAND_DURATION_METRIC: {
                    "kind": "histogram",
                    "unit": "s",
                    "description": "duration of each command",
                    "attributes": list(BUILTIN_METRIC_ATTRIBUTES),
                },
                **{
                    m.name: {"kind": m.kind, "unit": m.unit, "description": m.description}
                    for m in self.metrics
                },
            },
        }
