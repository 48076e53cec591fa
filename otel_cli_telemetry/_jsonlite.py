"""JSON for the hot path, without importing the ``json`` package.

``import json`` compiles five regular expressions (scanner, decoder, encoder) and costs a
recording run about 5 M instructions (~1.4 ms), a tenth of the SDK's whole cost in the CLI
process, for a handful of small documents: the record written to the spool and history,
the state files. CPython's C accelerator ``_json`` (which ``json`` itself uses for the same
work) encodes and scans without those expressions; this module drives it directly, with
``json``'s defaults (ASCII output, NaN allowed, circular references refused), and falls back
to ``json`` where the accelerator is missing (other interpreters) or refuses its arguments.

A test checks that both functions agree with ``json.dumps``/``json.loads`` on generated
documents and on malformed input.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs a process that has not loaded it ~40 M instructions
if TYPE_CHECKING:
    from typing import Any

try:
    import _json as _accelerator
except ImportError:  # pragma: no cover - CPython always has it
    _accelerator = None  # type: ignore[assignment]

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


def _not_serializable(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class _ScanContext:
    """What ``_json.make_scanner`` reads from ``json.JSONDecoder`` (its defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_encoders: dict[bool, Any] = {}
_scanner: Any = None


def _encoder(sort_keys: bool) -> Any:
    encoder = _encoders.get(sort_keys)
    if encoder is None and _accelerator is not None:
        encoder = _encoders[sort_keys] = _accelerator.make_encoder(
            {}, _not_serializable, _accelerator.encode_basestring_ascii, None, ":", ",",
            sort_keys, False, True,
        )  # fmt: skip
    return encoder


def dumps(value: Any, *, sort_keys: bool = False) -> str:
    """``json.dumps(value, separators=(",", ":"), sort_keys=sort_keys)``."""
    encoder = _encoder(sort_keys)
    if encoder is not None:
        try:
            return "".join(encoder(value, 0))
        except (TypeError, ValueError):
            pass  # let json raise its own error (and message) for the same value
    import json

    return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys)


def loads(data: str | bytes | bytearray) -> Any:
    """``json.loads(data)``; raises ValueError (``json.JSONDecodeError`` or
    ``UnicodeDecodeError``) for what it refuses, and RecursionError for too deep nesting."""
    global _scanner
    value: Any = None
    end = -1
    if _accelerator is not None:
        try:
            text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            text = ""  # another encoding json may detect (UTF-16, UTF-32, a BOM)
        if _scanner is None:
            _scanner = _accelerator.make_scanner(_ScanContext())  # type: ignore[arg-type]
        start = len(text) - len(text.lstrip(_WHITESPACE))
        try:
            value, end = _scanner(text, start)
        except Exception:  # StopIteration, ValueError, and SystemError: the
            # scanner's error path looks up json.decoder in sys.modules and fails without it
            end = -1
        if end >= 0 and not text[end:].strip(_WHITESPACE):
            return value
    import json  # malformed, or not UTF-8: json decides, and raises its own error

    return json.loads(data)
