"""The few pieces of the Protocol Buffers wire format that ``encode`` writes OTLP with,
and the reader the transport parses an OTLP answer's partial success with.

Why by hand: importing ``google.protobuf`` and the two ``opentelemetry-proto`` request
modules cost ~90 M CPU instructions (~25 ms), most of a drainer's start and of CI in-process
delivery, to build messages whose whole shape is known in advance. ``encode`` writes the
same bytes directly with these helpers; the tests compare them byte for byte with
``SerializeToString()`` of the messages built with protobuf.

The format (https://protobuf.dev/programming-guides/encoding/): a message is a sequence of
fields, each a *tag* (``field_number << 3 | wire_type`` as a varint) and a value. The wire
types used here: 0 varint (enums, bools, int64), 1 fixed 8 bytes (``fixed64``, ``sfixed64``,
``double``), 2 length-delimited (strings, bytes, sub-messages, packed repeated numbers),
5 fixed 4 bytes (``fixed32``). All fixed-width values are little-endian.

What protobuf's serializer also does, and the callers must, for identical bytes: fields in
field-number order; proto3 fields without presence omitted when they hold the default
(0, ``""``, ``b""``, false, an empty repeated field); fields with presence (``oneof``
members, ``optional``, sub-messages that were set) written even when they hold it.

Values out of a field's range raise (``ValueError``, or ``struct.error`` for fixed-width
values), as protobuf refuses to set them: the drainer then drops the record alone.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5

_INT64_MIN, _UINT64_LIMIT = -(1 << 63), 1 << 64

#: The one-byte varints, 0..127: most tags, lengths and enum values.
_SMALL = [bytes((n,)) for n in range(128)]

fixed64 = struct.Struct("<Q").pack
"""``fixed64`` (unsigned, 8 bytes little-endian): OTLP's timestamps and counts."""
sfixed64 = struct.Struct("<q").pack
"""``sfixed64`` (signed, 8 bytes): OTLP's integer metric values."""
fixed32 = struct.Struct("<I").pack
"""``fixed32`` (unsigned, 4 bytes): OTLP's span flags."""
double = struct.Struct("<d").pack
"""``double`` (IEEE 754, 8 bytes, bit for bit: ``-0.0``, NaN and infinities as they are)."""


def varint(value: int) -> bytes:
    """``value`` as a base-128 varint (7 bits a byte, low first, high bit: more follows).

    A negative value is an ``int64``'s: written as its 64-bit two's complement, always
    10 bytes, as protobuf writes it. Values outside ``[-2**63, 2**64)`` raise ValueError.
    """
    if 0 <= value < 128:
        return _SMALL[value]
    if value < 0:
        if value < _INT64_MIN:
            raise ValueError(f"Value out of range: {value}")
        value += _UINT64_LIMIT
    elif value >= _UINT64_LIMIT:
        raise ValueError(f"Value out of range: {value}")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def int64(value: int) -> bytes:
    """An ``int64`` as a varint; outside ``[-2**63, 2**63)`` raises ValueError (protobuf's
    check: a ``uint64``-sized value is not an ``int64``)."""
    if value >= 1 << 63:
        raise ValueError(f"Value out of range: {value}")
    return varint(value)


def checked_sfixed64(value: int) -> bytes:
    """An ``sfixed64``; outside ``[-2**63, 2**63)`` raises ValueError, as protobuf does
    (``struct`` would raise its own error, which says less)."""
    if not _INT64_MIN <= value < 1 << 63:
        raise ValueError(f"Value out of range: {value}")
    return sfixed64(value)


def tag(field_number: int, wire_type: int) -> bytes:
    """The key of a field: its number and wire type, as a varint (precompute it)."""
    return varint(field_number << 3 | wire_type)


def delimited(key: bytes, payload: bytes) -> bytes:
    """A length-delimited field: ``key``, the payload's length, the payload (a sub-message's
    serialized fields, a string's UTF-8, bytes)."""
    size = len(payload)
    return key + (_SMALL[size] if size < 128 else varint(size)) + payload


def string(key: bytes, value: str) -> bytes:
    """A ``string`` field, UTF-8 (a lone surrogate raises UnicodeEncodeError, as protobuf's
    strict UTF-8 does)."""
    return delimited(key, value.encode())


def packed_fixed64(key: bytes, values: Iterable[int]) -> bytes:
    """A packed ``repeated fixed64`` (one length-delimited run of 8-byte values); nothing
    for no values, as protobuf omits an empty repeated field."""
    items = tuple(values)
    if not items:
        return b""
    return delimited(key, struct.pack(f"<{len(items)}Q", *items))


def packed_double(key: bytes, values: Iterable[float]) -> bytes:
    """A packed ``repeated double``; nothing for no values."""
    items = tuple(values)
    if not items:
        return b""
    return delimited(key, struct.pack(f"<{len(items)}d", *items))


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``data[pos:]`` (as an unsigned 64-bit value, as protobuf keeps it) and
    the position after it; ValueError if it is cut short or longer than 10 bytes."""
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & (_UINT64_LIMIT - 1), pos
        shift += 7


def read_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Each field of a serialized message: (field number, wire type, value), the value an
    int for varints (unsigned) and fixed-width values (their bytes read as unsigned
    little-endian), the payload for length-delimited ones. ValueError for anything
    malformed, and for the deprecated group wire types (3, 4), which OTLP never uses."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        value: int | bytes
        if wire_type == VARINT:
            value, pos = read_varint(data, pos)
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            if pos + size > end:
                raise ValueError("truncated fixed-width value")
            value = int.from_bytes(data[pos : pos + size], "little")
            pos += size
        elif wire_type == LENGTH_DELIMITED:
            size, pos = read_varint(data, pos)
            if pos + size > end:
                raise ValueError("truncated length-delimited value")
            value = data[pos : pos + size]
            pos += size
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
        yield number, wire_type, value


def read_partial_success(payload: bytes) -> tuple[int, str]:
    """(rejected items, error message) of an ``ExportTraceServiceResponse`` or
    ``ExportMetricsServiceResponse`` (both: ``partial_success = 1 {int64 rejected = 1;
    string error_message = 2}``); (0, "") when there is none.

    Read here rather than with the protobuf classes because the collector answers every
    success with ``partial_success {}`` (two bytes): parsing them would import protobuf in
    every drainer. As protobuf parses: unknown fields and fields of an unexpected wire type
    are skipped, the last occurrence of a field wins, the int64 is two's complement, the
    string must be UTF-8 (ValueError otherwise, as for anything malformed).
    """
    rejected, message = 0, ""
    for number, _wire_type, value in read_fields(payload):
        if number != 1 or not isinstance(value, bytes):
            continue
        for inner_number, inner_type, inner in read_fields(value):
            if inner_number == 1 and inner_type == VARINT and isinstance(inner, int):
                rejected = inner - _UINT64_LIMIT if inner >= 1 << 63 else inner
            elif inner_number == 2 and isinstance(inner, bytes):
                message = inner.decode("utf-8")
    return rejected, message
