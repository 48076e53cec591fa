"""The privacy gate every record passes before it is stored anywhere.

Fail closed, by kind (see :mod:`.kinds`):

- A key that is neither built-in nor declared is dropped (span, phase, metric-point and
  resource attributes alike).
- Every value is checked against its field's kind: an enum value must be declared, an
  identifier must fit the identifier grammar and hold no secret, numbers must be numbers...
  A value that does not fit becomes its kind's placeholder (strings) or is dropped (numbers,
  booleans). Only ``text`` fields are scrubbed and kept; nothing else is ever "cleaned up".
- Names are checked against the names grammar: command path components (dynamic) also
  against this machine's user and host names, and become ``<redacted>`` when they fail;
  phase and metric names were checked where they were declared and are checked again here.
  A metric whose name fails is dropped whole; a unit that is not a unit becomes empty;
  descriptions are scrubbed as text.

Everything replaced or dropped is counted in ``cli_telemetry.sdk.redacted`` on the command span.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..schema import COMMAND_DURATION_METRIC, TRUSTED_BUILTINS, Schema, builtin_fields
from .kinds import DROP, REDACTED, TEXT_MAX_LENGTH, Redactor, unit_problem

#: The longest string any value can have after redaction (text fields).
MAX_STRING_LENGTH = TEXT_MAX_LENGTH
REDACTED_NAME = REDACTED

Scrub = Callable[[str], str]


def clean_attributes(
    attributes: dict[str, Any],
    allowed: Iterable[str],
    schema: Schema,
    redactor: Redactor,
    trusted: Redactor,
) -> dict[str, Any]:
    """The attributes that may be kept, each as its kind allows."""
    allowed_keys = frozenset(allowed)
    kept: dict[str, Any] = {}
    for key, value in attributes.items():
        field = schema.field(key) if key in allowed_keys else None
        if field is None:
            redactor.count += 1
            continue
        if key == "cli_telemetry.command":
            cleaned: Any = clean_command(value, redactor)
        elif key in TRUSTED_BUILTINS and key in builtin_fields():
            cleaned = trusted.value(field, value)
        else:
            cleaned = redactor.value(field, value)
        if cleaned is not DROP:
            kept[key] = cleaned
    return kept


def clean_command(value: Any, redactor: Redactor) -> str:
    """``cli_telemetry.command``: every path component (``stage new``, ``build+upload``) must be a
    name, else the whole path is ``<redacted>`` (the good parts of a secret split on spaces
    would still be parts of it)."""
    parts = value.replace("+", " ").split(" ") if isinstance(value, str) else []
    if 0 < len(parts) <= 16 and len(value) <= 256:
        counted = redactor.count
        if all(redactor.name(part) != REDACTED for part in parts):
            return str(value)
        redactor.count = counted
    redactor.count += 1
    return REDACTED


def redact_record(record: dict[str, Any], schema: Schema, scrub: Scrub) -> int:
    """Filter and check a raw record in place; returns how many values were replaced or
    dropped (also set as ``cli_telemetry.sdk.redacted`` when not zero)."""
    redactor = Redactor(scrub)
    trusted = Redactor(scrub, trusted=True)
    attributes = clean_attributes(
        record.get("attributes", {}), schema.span_attributes, schema, redactor, trusted
    )
    record["attributes"] = attributes
    record["resource"] = clean_attributes(
        record.get("resource", {}), schema.resource_attributes, schema, redactor, trusted
    )
    app = redactor.identifier(str(record.get("app", "")))
    command = attributes.get("cli_telemetry.command")
    if record.get("name") == record.get("app") or not isinstance(command, str):
        record["name"] = app
    else:
        record["name"] = f"{app} {command}"
    for phase in record.get("phases", []):
        phase["name"] = redactor.name(phase.get("name", ""), dynamic=False)
        phase["attributes"] = clean_attributes(
            phase.get("attributes", {}), schema.phase_attributes, schema, redactor, trusted
        )
    metrics = []
    for metric in record.get("metrics", []):
        name = metric.get("name")
        if name != COMMAND_DURATION_METRIC and redactor.name(name, dynamic=False) != name:
            redactor.count += len(metric.get("points", ()))
            continue
        unit = metric.get("unit") or ""
        if unit and unit_problem(unit) is not None:
            redactor.count += 1
            unit = ""
        metric["unit"] = unit
        description = str(metric.get("description") or "")
        cleaned = scrub(description)[:MAX_STRING_LENGTH]
        if cleaned != description[:MAX_STRING_LENGTH]:
            redactor.count += 1
        metric["description"] = cleaned
        for point in metric.get("points", []):
            point["attributes"] = clean_attributes(
                point.get("attributes", {}), schema.metric_attributes, schema, redactor, trusted
            )
        metrics.append(metric)
    if "metrics" in record:
        record["metrics"] = metrics
    total = redactor.count + trusted.count
    if total:
        attributes["cli_telemetry.sdk.redacted"] = total
    return total
