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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _grammar

if TYPE_CHECKING:
    from ..schema import Field

NAME_MAX_LENGTH: int = _grammar.NAMES["max_length"]
IDENTIFIER_MAX_LENGTH: int = _grammar.KINDS["identifier"]["max_length"]
TEXT_MAX_LENGTH: int = _grammar.KINDS["text"]["max_length"]
MAX_LIST_LENGTH = 64
IDENTIFIER_RULE = (
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
        return IDENTIFIER_RULE
    finding = secret_finding(value)
    if finding:
        return f"it looks like a secret or personal data (rule {finding})"
    return None


def check_enum_values(field: Field) -> Field:
    """``field``, if each of its enum values is an identifier that does not look like a
    secret; else ValueError (a programming error, raised where ``init()`` takes the fields).

    Not checked where the field is built (``telemetry.Enum(...)``, often at module level):
    a run that the environment switched off then loads no grammar and no rule index.
    """
    for value in field.values:
        if not fits_identifier(value):
            raise ValueError(f"Enum value {show(value)} is not allowed: {IDENTIFIER_RULE}")
        finding = secret_finding(value)
        if finding:
            raise ValueError(
                "Enum value (not shown) is not allowed: it looks like a secret or personal "
                f"data (rule {finding})"
            )
    return field


def check_static_name(what: str, name: object) -> str:
    """``name`` if it can be a static name, else ValueError (a programming error).

    The message quotes the name only when it fails the grammar; a name rejected as a
    secret is not repeated, so the error itself cannot spread it.
    """
    problem = name_problem(name)
    if problem is None:
        assert isinstance(name, str)
        return name
    shown = show(name) if "secret" not in problem else "(not shown)"
    raise ValueError(f"{what} {shown} is not a valid name: {problem}")


def show(value: object) -> str:
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
