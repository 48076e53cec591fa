"""The data schema: every field the SDK can send, built-in or declared by the app.

This module is the single source of the allowlist. Capture drops any key not listed here
(fail closed), the ``schema`` command prints it, the collector's allowlist is generated
from it, and the schema version that consent is tied to is a digest of it.

Every field has a kind (see :mod:`otel_cli_telemetry.privacy.kinds`): built-in fields below,
declared fields from ``init(fields=)``. The kinds are part of the schema version, so a change
of kind re-shows the notice (or asks again) like a new field does.

Importing this module is cheap (no OpenTelemetry import); it runs on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

TYPE_CHECKING = False  # typing costs a process that has not loaded it ~40 M instructions
if TYPE_CHECKING:
    from typing import Any

#: Version of the record format shared by capture (which writes it) and delivery (which
#: reads it from the spool); the drainer refuses (and counts) other versions.
RECORD_VERSION = 1

#: The semantic-conventions version whose names the built-in attributes follow, published as
#: the schema URL of every resource and scope we send (``process.*``, ``error.type``,
#: ``service.*``, ``os.*``, ``host.arch``). Names that semantic conventions do not register
#: are this SDK's own and live in its own namespace, ``cli_telemetry.*``: the naming rules
#: advise against putting one's own names in a semantic-conventions namespace (``cli`` is
#: one, the CLI span conventions'), where a later registered name could clash with them.
SEMCONV_VERSION = "1.44.0"
SEMCONV_SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"

#: Bumped when the built-in fields below change; part of every schema version.
#: 2: kinds, and ``cli.telemetry.redacted``.
#: 3: this SDK's own names moved into the ``cli_telemetry.*`` namespace, ``cli.interactive``
#: became the registered ``process.interactive``, ``cli.installation.id`` was removed (see
#: :data:`RENAMED_ATTRIBUTES`). The schema version is a digest, so this re-shows the consent
#: notice once: intended, since what is sent is named differently.
BUILTIN_SCHEMA_REVISION = "3"

#: Span attributes every command span may carry, with what they mean.
BUILTIN_SPAN_ATTRIBUTES: Mapping[str, str] = {
    "process.executable.name": "the app's name (not the interpreter's)",
    "process.exit.code": "the exit code the command ended with",
    "process.pid": "the process id (meaningless outside the machine)",
    "error.type": "when the exit code is not 0: usage_error, interrupted, terminated, "
    "exit, or the qualified class name of the uncaught exception; never a message",
    "cli_telemetry.command": "the command path below the program name, e.g. 'deploy' or "
    "'stage new'",
    "cli_telemetry.flags": "names of the options given on the command line; never their values",
    "process.interactive": "whether stdin and stdout are a terminal",
    "cli_telemetry.ci.detected": "whether the command runs in CI",
    "cli_telemetry.ci.provider": "which CI system, when detected (github_actions, gitlab_ci, ...)",
    "cli_telemetry.agent": "which AI coding agent runs the command, when detected",
    "cli_telemetry.sdk.overhead_ms": "the SDK's own in-process cost for this command, in ms",
    "cli_telemetry.sdk.dropped": "records dropped since the last delivered one (caps, errors)",
    "cli_telemetry.sdk.redacted": "values of this record replaced or dropped by the privacy layer "
    "(failed their kind, looked like a secret or personal data, or were not declared)",
    "cli_telemetry.sdk.invalid_utf8": "how many captured strings were not valid UTF-8 (e.g. a "
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
    "service.instance.id": "a random uuid4 made on first run; identifies nothing else",
    "cli_telemetry.schema.version": "the version of this schema (changes re-show the notice)",
    "telemetry.sdk.name": "otel_cli_telemetry",
    "telemetry.sdk.language": "python",
    "telemetry.sdk.version": "the SDK's version",
}

#: The built-in metric and the attributes its points carry.
COMMAND_DURATION_METRIC = "cli_telemetry.command.duration"
BUILTIN_METRIC_ATTRIBUTES: tuple[str, ...] = (
    "cli_telemetry.command",
    "process.exit.code",
    "error.type",
)

#: Phase (child) spans carry only these built-in attributes, plus declared ones.
BUILTIN_PHASE_ATTRIBUTES: tuple[str, ...] = ("error.type",)

_BUILTIN_KINDS: dict[str, tuple[str, bool]] = {
    # key: (kind, many)
    "process.executable.name": ("identifier", False),
    "process.exit.code": ("integer", False),
    "process.pid": ("integer", False),
    "error.type": ("identifier", False),
    "cli_telemetry.command": ("identifier", False),
    "cli_telemetry.flags": ("identifier", True),
    "process.interactive": ("bool", False),
    "cli_telemetry.ci.detected": ("bool", False),
    "cli_telemetry.ci.provider": ("identifier", False),
    "cli_telemetry.agent": ("identifier", False),
    "cli_telemetry.sdk.overhead_ms": ("number", False),
    "cli_telemetry.sdk.dropped": ("integer", False),
    "cli_telemetry.sdk.redacted": ("integer", False),
    "cli_telemetry.sdk.invalid_utf8": ("integer", False),
    "service.name": ("identifier", False),
    "service.version": ("version", False),
    "os.type": ("identifier", False),
    "os.version": ("version", False),
    "host.arch": ("identifier", False),
    "process.runtime.name": ("identifier", False),
    "process.runtime.version": ("version", False),
    "service.instance.id": ("identifier", False),
    "cli_telemetry.schema.version": ("version", False),
    "telemetry.sdk.name": ("identifier", False),
    "telemetry.sdk.language": ("identifier", False),
    "telemetry.sdk.version": ("version", False),
}

_builtin_fields: dict[str, Field] = {}


def builtin_fields() -> Mapping[str, Field]:
    """The kind of every built-in attribute (span, phase, metric point and resource).

    Built on first use, by a run that records or a command that describes the schema: a
    run switched off by the environment imports this module (for ``MetricSpec``) and
    nothing more.
    """
    if not _builtin_fields:
        descriptions = {**BUILTIN_SPAN_ATTRIBUTES, **BUILTIN_RESOURCE_ATTRIBUTES}
        _builtin_fields.update(
            (key, Field(kind, descriptions[key], many=many))
            for key, (kind, many) in _BUILTIN_KINDS.items()
        )
    return _builtin_fields


#: Built-in attributes whose values this SDK computes from the OS, the interpreter or its
#: own state, never from the app's or the user's data: checked against their kind's
#: grammar, not scanned for secrets (keeps the common record free of any rule work).
TRUSTED_BUILTINS = frozenset(
    {
        "process.exit.code", "process.pid", "process.interactive", "cli_telemetry.ci.detected",
        "cli_telemetry.ci.provider", "cli_telemetry.agent", "cli_telemetry.sdk.overhead_ms",
        "cli_telemetry.sdk.dropped", "cli_telemetry.sdk.redacted",
        "cli_telemetry.sdk.invalid_utf8", "os.type", "os.version", "host.arch",
        "process.runtime.name", "process.runtime.version", "service.instance.id",
        "cli_telemetry.schema.version",
        "telemetry.sdk.name", "telemetry.sdk.language", "telemetry.sdk.version",
    }
)  # fmt: skip

#: Built-in attribute names of schema revision 2 and their names since revision 3, in one
#: place for everything that meets data written or sent by an older version: records
#: waiting in the spool and the local history (:func:`upgrade_attributes`), and the
#: collector's allowlist (its ``renamed`` map, so a new collector renames, rather than
#: drops, what SDKs of the previous release send). Kept for one release.
RENAMED_ATTRIBUTES: Mapping[str, str] = {
    "cli.command": "cli_telemetry.command",
    "cli.flags": "cli_telemetry.flags",
    "cli.interactive": "process.interactive",
    # Not ``cli_telemetry.ci``: a name that is also the namespace of another name
    # (``cli_telemetry.ci.provider``) cannot be stored by backends that nest dotted keys.
    "cli.ci": "cli_telemetry.ci.detected",
    "cli.ci.provider": "cli_telemetry.ci.provider",
    "cli.agent": "cli_telemetry.agent",
    "cli.telemetry.overhead_ms": "cli_telemetry.sdk.overhead_ms",
    "cli.telemetry.dropped": "cli_telemetry.sdk.dropped",
    "cli.telemetry.redacted": "cli_telemetry.sdk.redacted",
    "cli.telemetry.invalid_utf8": "cli_telemetry.sdk.invalid_utf8",
    "cli.telemetry.schema_version": "cli_telemetry.schema.version",
}

#: Metric names of schema revision 2 and their names since revision 3 (see above).
RENAMED_METRICS: Mapping[str, str] = {"cli.command.duration": COMMAND_DURATION_METRIC}

#: Built-in attributes of schema revision 2 with no successor: ``cli.installation.id``
#: carried the same uuid as ``service.instance.id``, which stays.
REMOVED_ATTRIBUTES = frozenset({"cli.installation.id"})

_PREVIOUS_NAMES: Mapping[str, str] = {new: old for old, new in RENAMED_ATTRIBUTES.items()}
_OLD_NAMES = frozenset(RENAMED_ATTRIBUTES) | REMOVED_ATTRIBUTES


def upgrade_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """``attributes`` (written by an older version) with revision-2 names renamed to their
    current names and removed ones dropped, in place; returned for convenience.

    A current name already present wins over its old name (a record never has both unless
    something else put them there). Cheap when there is nothing to do: one set test.
    """
    if attributes.keys() & _OLD_NAMES:
        for old in attributes.keys() & _OLD_NAMES:
            value = attributes.pop(old)
            new = RENAMED_ATTRIBUTES.get(old)
            if new is not None:
                attributes.setdefault(new, value)
    return attributes


def lookup(attributes: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """``attributes[key]``, or its value under its revision-2 name, or ``default``: for
    reading one key of a record that may have been written by the previous version."""
    if key in attributes:
        return attributes[key]
    previous = _PREVIOUS_NAMES.get(key)
    return attributes.get(previous, default) if previous is not None else default


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


# --- declarations: the kinds an app gives its own attributes (telemetry.Integer(...)) ---
# They live here, not in privacy.kinds (which checks values at capture), because an app
# declares them at module level in every run, a switched-off run included: building one
# imports nothing. The grammar and secret checks of enum values run where init() takes
# the fields (privacy.kinds.check_enum_values, called by the configuration).

KINDS = ("enum", "identifier", "integer", "number", "bool", "version", "duration", "text")

#: The OTLP value type of each kind (the element type when ``many``).
KIND_TYPES = {
    "enum": "string",
    "identifier": "string",
    "integer": "int",
    "number": "double",
    "bool": "bool",
    "version": "string",
    "duration": "string",
    "text": "string",
}


class Field:
    """The declaration of one custom attribute: its kind, description and constraints."""

    __slots__ = ("description", "implicit", "kind", "many", "values")

    def __init__(
        self,
        kind: str,
        description: str,
        *,
        values: Iterable[str] = (),
        many: bool = False,
        implicit: bool = False,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown field kind {kind!r}; one of {', '.join(KINDS)}")
        if not isinstance(description, str) or not description.strip():
            raise ValueError("a field needs a description (it is shown in the policy)")
        if not isinstance(many, bool):
            raise TypeError("many= must be True or False")
        self.kind = kind
        self.description = description
        self.many = many
        self.implicit = implicit
        self.values: tuple[str, ...] = ()
        if kind == "enum":
            if isinstance(values, str) or not isinstance(values, Iterable):
                raise TypeError("Enum(values=...) must be a list of strings")
            listed = tuple(values)
            if not listed:
                raise ValueError("Enum(values=...) needs at least one value")
            if not all(isinstance(value, str) for value in listed):
                shown = next(repr(v)[:48] for v in listed if not isinstance(v, str))
                raise ValueError(f"Enum value {shown} is not allowed: not a str")
            self.values = tuple(sorted(set(listed)))
        elif values:
            raise ValueError(f"values= is only for enum fields, not {kind}")

    @property
    def type(self) -> str:
        """The OTLP type a value must have (``any`` for an implicit identifier)."""
        if self.implicit:
            return "any"
        return KIND_TYPES[self.kind] + ("[]" if self.many else "")

    def as_dict(self) -> dict[str, Any]:
        """The field as plain data, in the shape of ``Schema.as_dict()``."""
        data: dict[str, Any] = {"description": self.description, "kind": self.kind}
        if self.values:
            data["values"] = list(self.values)
        data["type"] = self.type
        return data

    def digest_text(self) -> str:
        """What the schema version digests: kind, type and values (not the description)."""
        return f"{self.kind}:{self.type}:{','.join(self.values)}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Field) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash((self.kind, self.description, self.values, self.many, self.implicit))

    def __repr__(self) -> str:
        extra = f", values={list(self.values)!r}" if self.values else ""
        extra += ", many=True" if self.many else ""
        return f"Field({self.kind!r}, {self.description!r}{extra})"


def Enum(description: str, values: Iterable[str], *, many: bool = False) -> Field:
    """A closed set of strings (each an identifier); anything else is sent as ``<other>``."""
    return Field("enum", description, values=values, many=many)


def Identifier(description: str, *, many: bool = False) -> Field:
    """A short token of the identifier grammar (a model name, a plugin id, a region)."""
    return Field("identifier", description, many=many)


def Integer(description: str, *, many: bool = False) -> Field:
    """A whole number (a count, a size in bytes)."""
    return Field("integer", description, many=many)


def Number(description: str, *, many: bool = False) -> Field:
    """A finite number (a ratio, a duration in seconds)."""
    return Field("number", description, many=many)


def Bool(description: str, *, many: bool = False) -> Field:
    """True or False."""
    return Field("bool", description, many=many)


def Version(description: str, *, many: bool = False) -> Field:
    """A version string (PEP 440, SemVer, a kernel release)."""
    return Field("version", description, many=many)


def Duration(description: str, *, many: bool = False) -> Field:
    """A duration: ``1h30m``, ``250ms``, ``PT90S``, ``01:30:00``, or a number of seconds."""
    return Field("duration", description, many=many)


def Text(description: str, *, many: bool = False) -> Field:
    """Free text: scrubbed of secrets and personal data (best effort: see docs/PRIVACY.md)."""
    return Field("text", description, many=many)


#: The public constructors by name (``Enum``...), for tools that read declarations.
KIND_CONSTRUCTORS = (
    "Enum",
    "Identifier",
    "Integer",
    "Number",
    "Bool",
    "Version",
    "Duration",
    "Text",
)

_CONSTRUCTORS: dict[str, Callable[..., Field]] = {
    "enum": Enum,
    "identifier": Identifier,
    "integer": Integer,
    "number": Number,
    "bool": Bool,
    "version": Version,
    "duration": Duration,
    "text": Text,
}


def field_from_declaration(key: str, declared: object) -> Field:
    """The :class:`Field` for one ``init(fields=)`` entry; raises ValueError/TypeError.

    Accepted: a :class:`Field` (``telemetry.Enum(...)``...), a description string (an implicit
    identifier), or a dict ``{"kind": ..., "description": ..., "values": [...], "many": bool}``
    (also what :meth:`Field.as_dict` returns, whose ``type`` is derived and otherwise ignored).
    """
    try:
        if isinstance(declared, Field):
            return declared
        if isinstance(declared, str):
            return Field("identifier", declared, implicit=True)
        if isinstance(declared, Mapping):
            unknown = set(declared) - {"kind", "description", "values", "many", "type"}
            if unknown:
                raise ValueError(f"unknown keys {sorted(unknown)}")
            kind = declared.get("kind")
            if (
                kind == "identifier" and declared.get("type") == "any"
            ):  # as_dict() of a bare description
                return Field("identifier", declared.get("description", ""), implicit=True)
            if kind not in _CONSTRUCTORS:
                raise ValueError(f"'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
            many = declared.get("many", str(declared.get("type", "")).endswith("[]"))
            arguments: dict[str, Any] = {"many": many}
            if kind == "enum":
                arguments["values"] = declared.get("values", ())
            elif "values" in declared:
                raise ValueError("'values' is only for enum fields")
            return _CONSTRUCTORS[kind](declared.get("description", ""), **arguments)
    except (ValueError, TypeError) as error:
        raise type(error)(f"init(fields=...): {key!r}: {error}") from None
    raise TypeError(
        f"init(fields=...): {key!r} must map to a description, a telemetry.Enum/Identifier/"
        f"Integer/Number/Bool/Version/Duration/Text(...) or a dict with 'kind'; "
        f"got {type(declared).__name__}"
    )


class Schema:
    """Everything one app can send: built-in fields plus the app's declarations.

    (Plain classes rather than dataclasses here and in the rest of the hot path: a dataclass
    costs ~0.5 ms to define at import, and the whole hot path has a 10 ms budget.)
    """

    __slots__ = ("app", "fields", "metrics")

    def __init__(
        self,
        app: str,
        fields: Mapping[str, Field | str | Mapping[str, object]] | None = None,
        metrics: tuple[MetricSpec, ...] = (),
    ) -> None:
        self.app = app
        #: Declared fields, each a :class:`~otel_cli_telemetry.privacy.kinds.Field` (a bare
        #: description or a dict is turned into one).
        self.fields: Mapping[str, Field] = {
            key: field_from_declaration(key, declared) for key, declared in (fields or {}).items()
        }
        self.metrics = tuple(metrics)

    def field(self, key: str) -> Field | None:
        """The declared or built-in field ``key``, or None."""
        return self.fields.get(key) or builtin_fields().get(key)

    @property
    def span_attributes(self) -> frozenset[str]:
        """Keys allowed on command and phase spans."""
        return frozenset(BUILTIN_SPAN_ATTRIBUTES) | frozenset(self.fields)

    @property
    def phase_attributes(self) -> frozenset[str]:
        """Keys allowed on phase spans (built-in ``error.type`` plus declared fields)."""
        return frozenset(BUILTIN_PHASE_ATTRIBUTES) | frozenset(self.fields)

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

        Each field's key, kind, type and enum values are digested (not its description, a
        wording fix changes no data). Metrics are left out on purpose: they may be created
        lazily inside a command, and their points carry numbers plus declared fields only, so
        they add no new kind of data. FNV-1a detects a change; it needs no security, and no
        import (hashlib costs 3 ms).
        """
        text = "".join(f"f:{key}:{self.fields[key].digest_text()}\n" for key in sorted(self.fields))
        return f"{BUILTIN_SCHEMA_REVISION}.{_fnv1a_32(text.encode()):08x}"

    def _described(self, keys: frozenset[str] | tuple[str, ...]) -> dict[str, dict[str, object]]:
        out: dict[str, dict[str, object]] = {}
        for key in sorted(keys):
            field = self.field(key)
            if field is not None:
                out[key] = field.as_dict()
        return out

    def as_dict(self) -> dict[str, object]:
        """The schema as plain data, for ``schema --format json``, the generated policy and
        the collector's generated config: every attribute with its description, ``kind``,
        OTLP ``type`` (and ``values`` for an enum)."""
        return {
            "app": self.app,
            "schema_version": self.version,
            "span_attributes": self._described(self.span_attributes),
            "phase_attributes": self._described(self.phase_attributes),
            "metric_point_attributes": self._described(self.metric_attributes),
            "resource_attributes": self._described(self.resource_attributes),
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
