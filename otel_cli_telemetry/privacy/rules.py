"""The secret and personal-data rules of ``rules.json``, and the engine that applies them.

``rules.json`` is the one rule set: the SDK applies it here, and the collector's rules are Go
code generated from the same file, so the two ends cannot drift. Its ``description`` fields
define the format; this module follows them.

Cost. Loading the file (about 1 ms) and compiling its 300-odd patterns (about 90 ms) would
ruin the hot path, so neither happens up front:

- :mod:`._index` is a small Python module generated from ``rules.json`` (see
  :func:`render_index`; a test keeps it in sync) holding each rule's conservative hints
  (shortest match, digits needed, keywords with counts, a second keyword group). Most
  values fail every hint and never cause the file to be read.
- When some rule may match, the file is read once per process and only the rules whose
  hints passed are compiled, each once (lazily, cached).
- The entropy catch-all (:func:`has_token`, :func:`replace_tokens`) is pure Python apart
  from the harmless-shape patterns, compiled on first need.

Nothing here raises to the caller for bad input: callers wrap it (scrub fails closed).
"""

from __future__ import annotations

import math
import os

from . import _index

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Callable, Iterable
    from typing import Any

#: The rule file shipped in the package.
RULES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules.json")

_DIGITS_TABLE = {ord(c): None for c in "0123456789"}


def luhn_ok(text: str) -> bool:
    """Whether the digits of ``text`` (13 to 19 of them) pass the Luhn check."""
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if position % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """Whether ``text`` without spaces is an IBAN with a valid ISO 7064 mod 97-10 check."""
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum() or not compact.isascii():
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


CHECKS: dict[str, Callable[[str], bool]] = {"luhn": luhn_ok, "iban": iban_ok}


class Rule:
    """One rule of the file; its pattern is compiled on first use."""

    __slots__ = ("check", "groups", "id", "pattern", "placeholder", "regex")

    def __init__(self, data: dict[str, Any]) -> None:
        self.id: str = data["id"]
        self.pattern: str = data["pattern"]
        self.placeholder: str = data["placeholder"]
        self.check = CHECKS[data["check"]] if data.get("check") else None
        self.regex: re.Pattern[str] | None = None
        self.groups = 0

    def compiled(self) -> re.Pattern[str]:
        regex = self.regex
        if regex is None:
            import re

            # re.ASCII gives \b, \w, \s and (?i) the meaning they have in Go's RE2.
            regex = re.compile(self.pattern, re.ASCII)
            self.groups = regex.groups
            self.regex = regex
        return regex

    def _span(self, match: re.Match[str]) -> tuple[int, int]:
        """The part of the match that the placeholder replaces (groups 1 and 2 are kept)."""
        start = match.end(1) if self.groups >= 1 and match.group(1) is not None else match.start()
        end = match.start(2) if self.groups >= 2 and match.group(2) is not None else match.end()
        return start, max(start, end)

    def replace(self, match: re.Match[str]) -> str:
        start, end = self._span(match)
        secret = match.string[start:end]
        if is_placeholder_text(secret) or (self.check is not None and not self.check(secret)):
            return match.group(0)
        prefix = (match.group(1) or "") if self.groups >= 1 else ""
        suffix = (match.group(2) or "") if self.groups >= 2 else ""
        return prefix + self.placeholder + suffix

    def finds(self, text: str) -> bool:
        """Whether this rule would replace something in ``text``."""
        for match in self.compiled().finditer(text):
            start, end = self._span(match)
            secret = text[start:end]
            if not is_placeholder_text(secret) and (self.check is None or self.check(secret)):
                return True
        return False


def is_placeholder_text(text: str) -> bool:
    """Whether ``text`` is a placeholder, maybe quoted or followed by punctuation.

    A value replaced by an earlier rule or round is left alone: ``"<aws-secret-key>"`` keeps
    its specific placeholder, and ``{"password": "x"}`` does not lose its closing brace to
    the unquoted-value form when the round is repeated.
    """
    if text in _index.PLACEHOLDERS:
        return True
    head, closed, tail = text.lstrip("\"'").partition(">")
    return bool(closed) and head + ">" in _index.PLACEHOLDERS and not any(c.isalnum() for c in tail)


class RuleSet:
    """The rules of one rule file, in file order."""

    __slots__ = ("rules",)

    def __init__(self, document: dict[str, Any]) -> None:
        if document.get("format") != 1:
            raise ValueError("unsupported rules.json format")
        self.rules = tuple(Rule(item) for item in document["rules"])


_loaded: RuleSet | None = None


def load() -> RuleSet:
    """The package's rule set, read once per process."""
    global _loaded
    rules = _loaded
    if rules is None:
        import json

        with open(RULES_FILE, encoding="utf-8") as handle:
            rules = _loaded = RuleSet(json.load(handle))
        if len(rules.rules) != _index.RULE_COUNT:
            raise ValueError("privacy/_index.py is out of date with rules.json")
    return rules


def candidate_rules(text: str) -> list[int]:
    """Indexes (in file order) of the rules whose hints ``text`` passes.

    A rule not listed cannot match ``text``; the hints are conservative by construction
    (see ``rules.json``), so this is only a shortcut, never a filter that loses a match.
    """
    length = len(text)
    if length < _index.SHORTEST_MATCH:
        return []
    lowered = text.lower()
    digits = -1
    found: dict[str, bool] = {}
    out: list[int] = []
    for min_length, min_digits, keywords, also, index in _index.GATES:
        if min_length > length:
            break
        if min_digits:
            if digits < 0:
                digits = length - len(text.translate(_DIGITS_TABLE))
            if digits < min_digits:
                continue
        if keywords and not _any_keyword(keywords, lowered, found):
            continue
        if also and not any(word in lowered for word in also):
            continue
        out.append(index)
    out.sort()
    return out


def _any_keyword(
    keywords: tuple[tuple[str, int], ...], lowered: str, found: dict[str, bool]
) -> bool:
    for keyword, count in keywords:
        key = keyword if count == 1 else f"{keyword}\0{count}"
        hit = found.get(key)
        if hit is None:
            hit = found[key] = keyword in lowered if count == 1 else lowered.count(keyword) >= count
        if hit:
            return True
    return False


def apply_rules(text: str) -> str:
    """``text`` with every rule applied once, in file order (callers repeat to a fixpoint)."""
    indexes = candidate_rules(text)
    if not indexes:
        return text
    rules = load().rules
    for index in indexes:
        rule = rules[index]
        text = rule.compiled().sub(rule.replace, text)
    return text


def first_finding(text: str) -> str | None:
    """The id of the first rule that would replace part of ``text``, else None."""
    indexes = candidate_rules(text)
    if not indexes:
        return None
    rules = load().rules
    for index in indexes:
        if rules[index].finds(text):
            return rules[index].id
    return None


# --- the entropy catch-all -------------------------------------------------------------

_RUN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + "+/_=.-")
_harmless: tuple[re.Pattern[str], ...] | None = None
_run_regex: re.Pattern[str] | None = None


def _harmless_patterns() -> tuple[re.Pattern[str], ...]:
    global _harmless
    patterns = _harmless
    if patterns is None:
        import re

        patterns = _harmless = tuple(
            re.compile(pattern, re.ASCII) for _, pattern in _index.HARMLESS
        )
    return patterns


# Each character as its class: l(ower), u(pper), d(igit), or a space for anything else.
_CLASSES = str.maketrans(
    {
        **dict.fromkeys(map(ord, "abcdefghijklmnopqrstuvwxyz"), "l"),
        **dict.fromkeys(map(ord, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"), "u"),
        **dict.fromkeys(map(ord, "0123456789"), "d"),
        **dict.fromkeys(map(ord, "+/_=.-"), " "),
    }
)
# Adjacent class changes that count: all but upper -> lower (CamelCase). A pair of two
# different characters cannot overlap itself, so str.count counts every occurrence.
_TRANSITIONS = ("ld", "dl", "ud", "du", "lu")


def looks_random(candidate: str) -> bool:
    """Whether one candidate (a run or a part of one) is a token, per ``entropy.description``."""
    settings = _index.ENTROPY
    shape = candidate.translate(_CLASSES)
    alnum = len(shape) - shape.count(" ")
    if alnum < settings["min_alnum"]:
        return False
    if sum(kind in shape for kind in "lud") < settings["min_classes"]:
        return False
    transitions = sum(shape.count(pair) for pair in _TRANSITIONS)
    if transitions < settings["min_transition_ratio"] * alnum:
        return False
    if _entropy(candidate) < settings["min_bits_per_char"]:
        return False
    return not any(pattern.match(candidate) for pattern in _harmless_patterns())


def _entropy(text: str) -> float:
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


def _run_is_token(run: str, min_length: int = 0) -> bool:
    if len(run) < (min_length or _index.ENTROPY["min_length"]):
        return False
    if looks_random(run):
        return True
    if "/" in run:
        return any(looks_random(part) for part in run.split("/"))
    return False


def has_token(text: str, *, short: bool = False) -> bool:
    """Whether a run of ``text`` is a token by the entropy catch-all (pure Python).

    ``short``: ``text`` is a name or an identifier value, whose runs are candidates from
    ``min_length_short`` characters on (a whole short word can be a token).
    """
    minimum = _index.ENTROPY["min_length_short" if short else "min_length"]
    if len(text) < minimum:
        return False
    return any(_run_is_token(run, minimum) for run in _runs(text))


def _runs(text: str) -> Iterable[str]:
    start = -1
    for position, ch in enumerate(text):
        if ch in _RUN_CHARS:
            if start < 0:
                start = position
        elif start >= 0:
            yield text[start:position]
            start = -1
    if start >= 0:
        yield text[start:]


def replace_tokens(text: str) -> str:
    """``text`` with every run that is a token replaced by the entropy placeholder."""
    global _run_regex
    minimum = _index.ENTROPY["min_length"]
    if len(text) < minimum or (len(text) <= 256 and not has_token(text)):
        return text  # the common case (a short value): no regex at all
    regex = _run_regex
    if regex is None:
        import re

        regex = _run_regex = re.compile(f"[A-Za-z0-9+/_=.-]{{{minimum},}}")
    placeholder = _index.ENTROPY["placeholder"]
    return regex.sub(
        lambda match: placeholder if _run_is_token(match.group(0)) else match.group(0), text
    )


# --- the generated index -----------------------------------------------------------------


def render_index(document: dict[str, Any]) -> str:
    """The Python source of :mod:`._index` for the rule file ``document``.

    Regenerate with ``python -m otel_cli_telemetry.privacy.rules`` after editing rules.json.
    """
    gates = []
    for index, rule in enumerate(document["rules"]):
        counts = rule.get("min_counts", {})
        keywords = tuple((word, int(counts.get(word, 1))) for word in rule["keywords"])
        gates.append(
            (
                int(rule["min_length"]),
                int(rule.get("min_digits", 0)),
                keywords,
                tuple(rule.get("also", ())),
                index,
            )
        )
    gates.sort(key=lambda gate: (gate[0], gate[4]))
    placeholders = {rule["placeholder"] for rule in document["rules"]}
    placeholders |= {
        kind["placeholder"] for kind in document["kinds"].values() if "placeholder" in kind
    }
    placeholders |= {document["entropy"]["placeholder"], "<redacted>", "<user>", "<host>"}
    entropy = {
        key: value
        for key, value in document["entropy"].items()
        if key not in ("harmless", "description", "alphabet")
    }
    lines = [
        *_generated_header("render_index"),
        "# fmt: off",
        f"RULE_COUNT = {len(document['rules'])}",
        f"SHORTEST_MATCH = {min(gate[0] for gate in gates)}",
        "#: (min_length, min_digits, ((keyword, min_count), ...), also, rule index), by min_length",
        "GATES = (",
        *[f"    {gate!r}," for gate in gates],
        ")",
        f"PLACEHOLDERS = frozenset({sorted(placeholders)!r})",
        f"ENTROPY: dict[str, Any] = {entropy!r}",
        "HARMLESS = (",
        *[f"    {(item['id'], item['pattern'])!r}," for item in document["entropy"]["harmless"]],
        ")",
        "# fmt: on",
    ]
    return "\n".join(lines) + "\n"


def render_grammar(document: dict[str, Any]) -> str:
    """The Python source of :mod:`._grammar`: the names and kind grammars of ``document``.

    A module of its own because declaring fields and names needs only these few values,
    while the rule index is loaded only when a value may hold a secret.
    """
    names = {key: document["names"][key] for key in ("pattern", "max_length")}
    kinds = {
        name: {key: kind[key] for key in ("pattern", "max_length", "placeholder") if key in kind}
        for name, kind in sorted(document["kinds"].items())
    }
    lines = [
        *_generated_header("render_grammar"),
        "# fmt: off",
        f"NAMES: dict[str, Any] = {names!r}",
        "KINDS: dict[str, dict[str, Any]] = {",
        *[f"    {name!r}: {value!r}," for name, value in kinds.items()],
        "}",
        "# fmt: on",
    ]
    return "\n".join(lines) + "\n"


def _generated_header(renderer: str) -> list[str]:
    return [
        (
            f'"""GENERATED from rules.json by otel_cli_telemetry.privacy.rules.{renderer}: '
            "do not edit."
        ),
        "",
        "Regenerate: python -m otel_cli_telemetry.privacy.rules",
        '"""',
        "",
        "# ruff: noqa: E501",
        "from __future__ import annotations",
        "",
        "TYPE_CHECKING = False",
        "if TYPE_CHECKING:  # typing imports re: not on the hot path",
        "    from typing import Any",
        "",
    ]


def _write_generated() -> None:
    import json

    with open(RULES_FILE, encoding="utf-8") as handle:
        document = json.load(handle)
    folder = os.path.dirname(RULES_FILE)
    for name, render in (("_index.py", render_index), ("_grammar.py", render_grammar)):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
            handle.write(render(document))


if __name__ == "__main__":
    _write_generated()
