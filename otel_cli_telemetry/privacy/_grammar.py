"""GENERATED from rules.json by otel_cli_telemetry.privacy.rules.render_grammar: do not edit.

Regenerate: python -m otel_cli_telemetry.privacy.rules
"""

# ruff: noqa: E501
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing imports re: not on the hot path
    from typing import Any

# fmt: off
NAMES: dict[str, Any] = {'pattern': '^[A-Za-z][A-Za-z0-9_]*(?:[./-][A-Za-z0-9_]+)*$', 'max_length': 64}
KINDS: dict[str, dict[str, Any]] = {
    'bool': {},
    'duration': {'pattern': '^(?:(?:[0-9]{1,9}(?:\\.[0-9]{1,9})?(?:ns|us|µs|ms|s|m|h|d)){1,6}|P(?:[0-9]{1,9}D)?(?:T(?:[0-9]{1,9}H)?(?:[0-9]{1,9}M)?(?:[0-9]{1,9}(?:\\.[0-9]{1,9})?S)?)?|[0-9]{1,4}:[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]{1,9})?)?)$', 'max_length': 32, 'placeholder': '<invalid-duration>'},
    'enum': {'placeholder': '<other>'},
    'identifier': {'pattern': '^-{0,2}[A-Za-z0-9_][A-Za-z0-9_.+/-]*(?: [A-Za-z0-9_][A-Za-z0-9_.+/-]*){0,7}$', 'max_length': 64, 'placeholder': '<redacted>'},
    'integer': {},
    'number': {},
    'text': {'max_length': 1024},
    'version': {'pattern': '^(?:unknown|v?[0-9]{1,9}(?:\\.[0-9]{1,9}){0,5}(?:[A-Za-z][A-Za-z0-9]{0,23})?(?:[-+._~][A-Za-z0-9]{1,24}){0,8})$', 'max_length': 64, 'placeholder': '<invalid-version>'},
}
# fmt: on
