"""Field kinds: what a declared attribute may hold, and what happens to a value that does not fit.

An app declares each custom attribute with a kind::

    telemetry.init(app="deployctl", version="1.4.2", fields={
        "deploy.region": telemetry.Enum("target region", values=["eu", "us"]),
        "deploy.functions.added": telemetry.Integer("functions added by the deploy"),
        "deploy.note": telemetry.Text("free-text note, scrubbed"),
    })

=============  ==============  =============================================================
kind           OTLP type       a value that does not fit
=============  ==============  =============================================================
enum           string          one of ``values``, else ``<other>``
identifier     string          the identifier grammar, no secret, else ``<redacted>``
integer        int             an int (not bool) in the signed 64-bit range, else dropped
number         double          a finite int or float (not bool), else dropped
bool           bool            True/False, else dropped
version        string          PEP 440 / SemVer / kernel release, else ``<invalid-version>``
duration       string          ``1h30m``, ``PT90S``, ``01:30``; a number means seconds
text           string          free text: scrubbed of secrets and personal data, 1024 chars
=============  ==============  =============================================================

``many=True`` makes the field a list of such values (``string[]``...). A bare description
string (``fields={"deploy.stage": "the stage"}``, the form before kinds existed) is an
*implicit identifier*: a string must be an identifier, and ints, floats and bools are kept
as they are (schema type ``any``). Free text is never the default: say ``Text(...)``.

Every value replaced or dropped here is counted in ``cli_telemetry.sdk.redacted``.

Names (field keys, metric names, phase names, command path components) follow one grammar,
``names`` in ``rules.json``: a letter, then letters, digits and ``_``, in parts joined by
single ``.``, ``-`` or ``/``, at most 64 characters, and not a secret (no rule matches, no
token by the entropy check). A *static* name (a field key in ``init(fields=)``, a metric
name, a phase name) that fails raises ValueError where it is declared: that is a programming
error. A *dynamic* name (a command path component seen at run time: click/typer/argparse
subcommands, ``command(name)``) that fails is replaced by ``<redacted>`` and counted.

This module imports neither ``re`` nor ``json``: the common values are checked with plain
string operations; rules.json is read only when a value may hold a secret.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import _grammar

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

NAME_MAX_LENGTH: int = _grammar.NAMES["max_length"]
IDENTIFIER_MAX_LENGTH: int = _grammar.KINDS["identifier"]["max_length"]
TEXT_MAX_LENGTH: int = _grammar.KINDS["text"]["max_length"]
MAX_LIST_LENGTH = 64
_IDENTIFIER_RULE = (
    "identifiers are letters, digits and '_ . + / -', up to 8 words, at most "
    f"{IDENTIFIER_MAX_LENGTH} characters"
)
REDACTED = "<redacted>"
PLACEHOLDERS: dict[str, str] = {
    kind: spec["placeholder"] for kind, spec in _grammar.KINDS.items() if "placeholder" in spec
}

_INT64 = 2**63
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_WORD = _LETTERS | frozenset("0123456789_")
_IDENTIFIER_CHARS = _WORD | frozenset(".+/-")
_UNIT_CHARS = _WORD | frozenset("{}[]()/%.*^'-")

Scrub = Callable[[str], str]


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
            for value in listed:
                if not isinstance(value, str) or not fits_identifier(value):
                    problem = "not a str" if not isinstance(value, str) else _IDENTIFIER_RULE
                    raise ValueError(f"Enum value {_show(value)} is not allowed: {problem}")
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

    def check_values(self) -> Field:
        """This field, if no enum value looks like a secret, else ValueError.

        Run where the fields are declared to ``init()`` (``field_from_declaration``), not in
        the constructor: a kind built at module level in a run that the environment switched
        off then loads no rule index.
        """
        for value in self.values:
            finding = secret_finding(value)
            if finding:
                raise ValueError(
                    "Enum value (not shown) is not allowed: it looks like a secret or personal "
                    f"data (rule {finding})"
                )
        return self

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
            return declared.check_values()
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
            return _CONSTRUCTORS[kind](declared.get("description", ""), **arguments).check_values()
    except (ValueError, TypeError) as error:
        raise type(error)(f"init(fields=...): {key!r}: {error}") from None
    raise TypeError(
        f"init(fields=...): {key!r} must map to a description, a telemetry.Enum/Identifier/"
        f"Integer/Number/Bool/Version/Duration/Text(...) or a dict with 'kind'; "
        f"got {type(declared).__name__}"
    )


# --- grammars (plain string operations; tests check them against the rules.json patterns) ---


def fits_name(name: object) -> bool:
    """Whether ``name`` fits the names grammar (``rules.json`` ``names``)."""
    if not isinstance(name, str) or not 0 < len(name) <= NAME_MAX_LENGTH:
        return False
    if not name.isascii() or name[0] not in _LETTERS:
        return False
    after_separator = False
    for ch in name:
        if ch in _WORD:
            after_separator = False
        elif ch in "./-" and not after_separator:
            after_separator = True
        else:
            return False
    return not after_separator


def fits_identifier(value: object) -> bool:
    """Whether ``value`` fits the identifier grammar (``rules.json`` ``kinds.identifier``)."""
    if not isinstance(value, str) or not 0 < len(value) <= IDENTIFIER_MAX_LENGTH:
        return False
    if not value.isascii():
        return False
    words = value.split(" ")
    if len(words) > 8:
        return False
    first = words[0]
    words[0] = first[2:] if first.startswith("--") else first[1:] if first[:1] == "-" else first
    for word in words:
        if not word or word[0] not in _WORD or not _IDENTIFIER_CHARS.issuperset(word):
            return False
    return True


_pattern_cache: dict[str, Any] = {}


def _kind_pattern(kind: str) -> Any:
    pattern = _pattern_cache.get(kind)
    if pattern is None:
        import re

        pattern = _pattern_cache[kind] = re.compile(_grammar.KINDS[kind]["pattern"], re.ASCII)
    return pattern


_DIGITS = frozenset("0123456789")
_ALNUM = _LETTERS | _DIGITS
_VERSION_SEPARATORS = frozenset("-+._~")


def fits_version(value: object) -> bool:
    """Whether ``value`` fits the version grammar (``rules.json`` ``kinds.version``).

    Plain string operations (a test checks them against the pattern): ``v``, a number, up
    to 5 ``.number`` parts (numbers of at most 9 digits), an optional part glued to them that
    starts with a letter (``1.0rc1``), then up to 8 parts of a separator (``- + . _ ~``) and
    1 to 24 letters or digits; or ``unknown``.
    """
    if not isinstance(value, str) or not 0 < len(value) <= _grammar.KINDS["version"]["max_length"]:
        return False
    if value == "unknown":
        return True
    if not value.isascii():
        return False
    text = value[1:] if value[0] == "v" else value
    size = len(text)

    def run(start: int, chars: frozenset[str]) -> int:
        end = start
        while end < size and text[end] in chars:
            end += 1
        return end

    position = run(0, _DIGITS)
    if not 0 < position <= 9:
        return False
    for _ in range(5):  # core parts: "." and 1..9 digits, not followed by another digit
        if text[position : position + 1] != ".":
            break
        end = run(position + 1, _DIGITS)
        if end == position + 1 or end - position - 1 > 9:
            break
        position = end
    if position < size and text[position] in _LETTERS:  # the glued part (1.0rc1)
        end = run(position, _ALNUM)
        if end - position > 24:
            return False
        position = end
    groups = 0
    while position < size:  # separated parts
        if text[position] not in _VERSION_SEPARATORS:
            return False
        end = run(position + 1, _ALNUM)
        groups += 1
        if end == position + 1 or end - position - 1 > 24 or groups > 8:
            return False
        position = end
    return True


def fits_duration(value: object) -> bool:
    """Whether ``value`` fits the duration grammar (``rules.json`` ``kinds.duration``)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= _grammar.KINDS["duration"]["max_length"]
        and _kind_pattern("duration").match(value) is not None
    )


def fits_unit(unit: object) -> bool:
    """A metric unit: empty, or UCUM-like (``By``, ``s``, ``{function}``, ``By/s``, ``%``)."""
    return (
        isinstance(unit, str)
        and len(unit) <= 32
        and unit.isascii()
        and _UNIT_CHARS.issuperset(unit)
    )


def safe_version(version: object) -> str:
    """``version`` if it fits the version grammar and holds no secret, else the placeholder."""
    if isinstance(version, str) and fits_version(version) and secret_finding(version) is None:
        return version
    return PLACEHOLDERS["version"]


def unit_problem(unit: object) -> str | None:
    """Why ``unit`` cannot be a metric unit, else None."""
    if not fits_unit(unit):
        return "units are UCUM-like: letters, digits and '{}[]()/%.*^'-', at most 32 characters"
    assert isinstance(unit, str)
    finding = secret_finding(unit)
    if finding:
        return f"it looks like a secret or personal data (rule {finding})"
    return None


def secret_finding(text: str) -> str | None:
    """Why ``text`` holds a secret or personal data (a rule id, or ``entropy``), else None.

    Rules and the entropy check only; this machine's user and host names are not looked
    for (that layer belongs to values, see :func:`clean_value`).
    """
    from . import rules  # the rule index: only when a value may hold a secret

    finding = rules.first_finding(text)
    if finding is None and rules.has_token(text, short=True):
        return "entropy"
    return finding


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a name (a grammar or secret finding), else None."""
    if not isinstance(name, str):
        return f"must be a str, not {type(name).__name__}"
    if not fits_name(name):
        return (
            "names are a letter, then letters, digits and '_', in parts joined by single "
            f"'.', '-' or '/', at most {NAME_MAX_LENGTH} characters"
        )
    finding = secret_finding(name)
    if finding:
        return f"it looks like a secret or personal data (rule {finding})"
    return None


def identifier_problem(value: str) -> str | None:
    """Why ``value`` cannot be an identifier value, else None (static checks only)."""
    if not fits_identifier(value):
        return _IDENTIFIER_RULE
    finding = secret_finding(value)
    if finding:
        return f"it looks like a secret or personal data (rule {finding})"
    return None


def check_static_name(what: str, name: object) -> str:
    """``name`` if it can be a static name, else ValueError (a programming error).

    The message quotes the name only when it fails the grammar; a name rejected as a
    secret is not repeated, so the error itself cannot spread it.
    """
    problem = name_problem(name)
    if problem is None:
        assert isinstance(name, str)
        return name
    shown = _show(name) if "secret" not in problem else "(not shown)"
    raise ValueError(f"{what} {shown} is not a valid name: {problem}")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 48 else text[:45] + "...'"


# --- values ------------------------------------------------------------------------------

#: Returned by :func:`clean_value` for a value that must be dropped.
DROP: Any = object()


class Redactor:
    """Validates and scrubs values by kind for one record, counting what it changes.

    ``scrub`` is the full scrubber (rules, entropy, this machine's names) used for text;
    identifier-like values must come out of it unchanged. ``trusted``: the values come from
    the SDK itself (OS and runtime versions...): grammar checks only, no secret checks.
    """

    __slots__ = ("_memo", "count", "scrub", "trusted")

    def __init__(self, scrub: Scrub, *, trusted: bool = False) -> None:
        self.scrub = scrub
        self.trusted = trusted
        self.count = 0
        self._memo: dict[str, bool] = {}

    def clean_identifier_text(self, value: str) -> bool:
        """Whether an identifier-grammar string is free of secrets and personal data."""
        if self.trusted:
            return True
        known = self._memo.get(value)
        if known is None:
            from . import rules  # loaded with the scrubber already (pipeline.connect)

            known = self.scrub(value) == value and not rules.has_token(value, short=True)
            if len(self._memo) < 512:
                self._memo[value] = known
        return known

    def identifier(self, value: str) -> str:
        if fits_identifier(value) and self.clean_identifier_text(value):
            return value
        self.count += 1
        return REDACTED

    def name(self, value: object, *, dynamic: bool = True) -> str:
        """A name (dynamic: this machine's names are looked for too); ``<redacted>`` if not."""
        if isinstance(value, str) and fits_name(value):
            if dynamic:
                if self.clean_identifier_text(value):
                    return value
            elif secret_finding(value) is None:
                return value
        self.count += 1
        return REDACTED

    def value(self, field: Field, value: Any) -> Any:
        """``value`` as ``field`` allows it, a placeholder, or :data:`DROP`."""
        if field.many or (field.implicit and isinstance(value, (list, tuple, set, frozenset))):
            if not isinstance(value, (list, tuple, set, frozenset)):
                self.count += 1
                return DROP
            items = list(value)
            if isinstance(value, (set, frozenset)):
                items = sorted(items, key=repr)
            if len(items) > MAX_LIST_LENGTH:
                self.count += len(items) - MAX_LIST_LENGTH
                items = items[:MAX_LIST_LENGTH]
            cleaned = [self.scalar(field, item) for item in items]
            kept = [item for item in cleaned if item is not DROP]
            if not kept or len({type(item) for item in kept}) != 1:
                self.count += len(kept)
                return DROP
            return kept
        return self.scalar(field, value)

    def scalar(self, field: Field, value: Any) -> Any:
        kind = field.kind
        if kind == "text":
            if not isinstance(value, str):
                self.count += 1
                return DROP
            cleaned = self.scrub(value)[:TEXT_MAX_LENGTH]
            if cleaned != value[:TEXT_MAX_LENGTH]:
                self.count += 1
            return cleaned
        if kind == "identifier":
            if isinstance(value, str):
                return self.identifier(value)
            if field.implicit and _plain_number_or_bool(value):
                return value
            self.count += 1
            return REDACTED if not field.implicit else DROP
        if kind == "enum":
            if isinstance(value, str) and value in field.values:
                return value
            self.count += 1
            return PLACEHOLDERS["enum"]
        if kind == "integer":
            if isinstance(value, int) and not isinstance(value, bool) and -_INT64 <= value < _INT64:
                return value
        elif kind == "number":
            if _plain_number_or_bool(value) and not isinstance(value, bool):
                return float(value)
        elif kind == "bool":
            if isinstance(value, bool):
                return value
        elif kind == "version":
            if isinstance(value, str) and fits_version(value) and self.clean_identifier_text(value):
                return value
            self.count += 1
            return PLACEHOLDERS["version"]
        elif kind == "duration":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if math.isfinite(value) and 0 <= value < 1e9:
                    return f"{value:g}s"
            elif isinstance(value, str) and fits_duration(value):
                return value
            self.count += 1
            return PLACEHOLDERS["duration"]
        self.count += 1
        return DROP


def _plain_number_or_bool(value: object) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_INT64 <= value < _INT64
    return isinstance(value, float) and math.isfinite(value)
