"""The privacy gate every record passes before it is stored anywhere.

Fail closed: a key that is neither built-in nor declared is dropped (span, phase, metric and
resource attributes alike); a value that is not a plain scalar or a list of them is dropped
rather than turned into text; every string is scrubbed. Span and phase names, and
``cli.command``, are labels written by the app's code, not data: one that does not look like
a label (letters, digits, spaces and ``_ . - : / +``, at most :data:`MAX_NAME_LENGTH`
characters) is replaced whole by ``<redacted>``, and one that does is scrubbed like any
value. Metric units and descriptions are scrubbed too. The count of dropped keys is returned
so tests and the debug log can see it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..schema import BUILTIN_PHASE_ATTRIBUTES, Schema

MAX_STRING_LENGTH = 1024
MAX_LIST_LENGTH = 64
MAX_NAME_LENGTH = 128
REDACTED_NAME = "<redacted>"

_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.-:/+")

Scrub = Callable[[str], str]


def clean_value(value: Any, scrub: Scrub) -> Any:
    """A storable attribute value, scrubbed; None when the value must be dropped."""
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return scrub(value)[:MAX_STRING_LENGTH]
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [clean_value(item, scrub) for item in list(value)[:MAX_LIST_LENGTH]]
        if not items or any(item is None or isinstance(item, list) for item in items):
            return None
        if len({type(item) for item in items}) != 1:
            return None
        return sorted(items) if isinstance(value, (set, frozenset)) else items
    return None


def clean_name(name: Any, scrub: Scrub) -> str:
    """A span or phase name: a scrubbed label, or ``<redacted>`` if it is not a label."""
    text = str(name)
    if not text or len(text) > MAX_NAME_LENGTH or not _LABEL_CHARS.issuperset(text):
        return REDACTED_NAME
    return scrub(text)


def clean_attributes(
    attributes: dict[str, Any], allowed: Iterable[str], scrub: Scrub
) -> tuple[dict[str, Any], int]:
    """(kept attributes, number dropped) for one attribute set."""
    allowed_keys = frozenset(allowed)
    kept: dict[str, Any] = {}
    dropped = 0
    for key, value in attributes.items():
        if key not in allowed_keys:
            dropped += 1
            continue
        cleaned = clean_value(value, scrub)
        if cleaned is None:
            dropped += 1
            continue
        kept[key] = cleaned
    return kept, dropped


def redact_record(record: dict[str, Any], schema: Schema, scrub: Scrub) -> int:
    """Filter and scrub a raw record in place; returns how many keys were dropped."""
    dropped = 0
    record["name"] = clean_name(record.get("name", ""), scrub)
    record["attributes"], n = clean_attributes(
        record.get("attributes", {}), schema.span_attributes, scrub
    )
    dropped += n
    if "cli.command" in record["attributes"]:
        record["attributes"]["cli.command"] = clean_name(record["attributes"]["cli.command"], scrub)
    record["resource"], n = clean_attributes(
        record.get("resource", {}), schema.resource_attributes, scrub
    )
    dropped += n
    phase_keys = frozenset(schema.fields) | frozenset(BUILTIN_PHASE_ATTRIBUTES)
    for phase in record.get("phases", []):
        phase["name"] = clean_name(phase.get("name", ""), scrub)
        phase["attributes"], n = clean_attributes(phase.get("attributes", {}), phase_keys, scrub)
        dropped += n
    for metric in record.get("metrics", []):
        for text_key in ("unit", "description"):
            metric[text_key] = scrub(str(metric.get(text_key) or ""))[:MAX_STRING_LENGTH]
        for point in metric.get("points", []):
            point["attributes"], n = clean_attributes(
                point.get("attributes", {}), schema.metric_attributes, scrub
            )
            dropped += n
    return dropped
