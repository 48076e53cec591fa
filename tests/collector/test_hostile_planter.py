"""Plant a unique marker in every field of the OTLP trace and metrics schemas, one request
per field, over each protocol, and check which markers left the collector.

The fields come from the opentelemetry-proto descriptors (not from a list of fields our
code knows): every string, bytes and dropped-count field reachable from
ExportTraceServiceRequest and ExportMetricsServiceRequest, recursively (resources, entity
refs, scopes, spans, events, links, status, metrics of all five types, points, exemplars,
metadata, schema_url, trace_state...). Every KeyValue list gets an undeclared key (the key
itself a marker), a declared key with a secret value, and values of every AnyValue shape
(string, bytes, arrays, maps, nested), each with its own marker.

A marker is a secret (``secret=AKIA...``, refused or scrubbed by every field kind), a string
made invalid UTF-8 on the wire (every string field, key and value), or, in fields the
schema does not let through, a harmless unique word. The test passes when no
marker of either kind is in the output, except harmless words in the few fields the
schema carries as text (span name, scope name and version). Each request also carries a
clean command span and the pipeline is flushed with a sentinel before reading.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hostile_support import (
    flush_through,
    foreign_members,
    invalid_utf8,
    plain_marker,
    secret_marker,
    sentinel_resource,
    utf8_errors,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_DELTA,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Metric,
    NumberDataPoint,
    Summary,
    SummaryDataPoint,
)

from otlp_builders import (
    PROTOCOLS,
    any_value,
    counter_metric,
    encode,
    histogram_metric,
    metrics_request,
    send,
    span,
    trace_request,
    with_raw_bytes,
)

pytestmark = pytest.mark.collector

#: Fields the schema carries as free text: a harmless word may pass, a secret may not.
TEXT_FIELDS = frozenset(
    {
        "opentelemetry.proto.trace.v1.Span.name",
        "opentelemetry.proto.common.v1.InstrumentationScope.name",
        "opentelemetry.proto.common.v1.InstrumentationScope.version",
    }
)
#: The span's own ids: carried as they are (random bytes are fine by design).
ID_FIELDS = frozenset(
    {
        "opentelemetry.proto.trace.v1.Span.trace_id",
        "opentelemetry.proto.trace.v1.Span.span_id",
        "opentelemetry.proto.trace.v1.Span.parent_span_id",
    }
)
ID_SIZES = {"trace_id": 16, "span_id": 8, "parent_span_id": 8}
#: A declared string attribute per place a KeyValue list can be, for secret-valued plants.
DECLARED_STRING_KEY = {
    "opentelemetry.proto.resource.v1.Resource": "os.version",
    "opentelemetry.proto.trace.v1.Span": "error.type",
}


def base_traces(installation_id: str) -> Any:
    command = span("deployctl deploy", {"cli_telemetry.command": "deploy", "process.exit.code": 0})
    return trace_request(sentinel_resource(installation_id), [command])


def base_metrics(installation_id: str) -> ExportMetricsServiceRequest:
    """A point of each of the five metric types, under declared names where one exists."""
    point = {"cli_telemetry.command": "deploy", "process.exit.code": 0}
    gauge = Metric(
        name="deploy.functions.changed",
        gauge=Gauge(data_points=[NumberDataPoint(time_unix_nano=1, as_double=1.0)]),
    )
    exponential = Metric(
        name="deploy.build.duration",
        exponential_histogram=ExponentialHistogram(
            aggregation_temporality=AGGREGATION_TEMPORALITY_DELTA,
            data_points=[ExponentialHistogramDataPoint(time_unix_nano=1, count=1, sum=0.5)],
        ),
    )
    summary = Metric(
        name="cli_telemetry.command.duration",
        summary=Summary(data_points=[SummaryDataPoint(time_unix_nano=1, count=1, sum=0.5)]),
    )
    return metrics_request(
        sentinel_resource(installation_id),
        [
            histogram_metric("cli_telemetry.command.duration", [0.2], point),
            counter_metric("deploy.bytes_uploaded", 10, {"deploy.change": "added"}, unit="By"),
            gauge,
            exponential,
            summary,
        ],
    )


@dataclass
class Plant:
    """One planted field: where, how to apply it to a request, what must not leave."""

    path: str
    apply: Callable[[Message], None]
    forbidden: tuple[str, ...]
    #: placeholder -> raw bytes (invalid UTF-8) swapped in after encoding
    raw: dict[str, bytes] = field(default_factory=dict)


def _step(message: Message, name: str, next_name: str | None) -> Message:
    """The child message ``name`` of ``message``; for a repeated field, the element whose
    oneof holds ``next_name`` (metrics of several types), else the first, made if needed."""
    fd = message.DESCRIPTOR.fields_by_name[name]
    if not fd.is_repeated:
        return getattr(message, name)  # type: ignore[no-any-return]
    items = getattr(message, name)
    for item in items:
        if next_name is None or next_name not in item.DESCRIPTOR.fields_by_name:
            return item  # type: ignore[no-any-return]
        field = item.DESCRIPTOR.fields_by_name[next_name]
        if field.containing_oneof is None or item.WhichOneof(field.containing_oneof.name) in (
            None,
            next_name,
        ):
            return item  # type: ignore[no-any-return]
    return items.add()  # type: ignore[no-any-return]


def _target(root: Message, path: list[str]) -> Message:
    node = root
    for index, name in enumerate(path):
        node = _step(node, name, path[index + 1] if index + 1 < len(path) else None)
    return node


def _bytes_forms(value: bytes) -> tuple[str, ...]:
    return (base64.b64encode(value).decode(), value.hex(), value.hex().upper())


def _value_plants(where: str) -> Iterator[tuple[str, AnyValue, tuple[str, ...]]]:
    """AnyValues of every shape, each with its own marker."""
    secret, unique = secret_marker()
    yield "string", any_value(secret), (unique,)
    secret, unique = secret_marker()
    yield "bytes", any_value(secret.encode()), (unique, *_bytes_forms(secret.encode()))
    secret, unique = secret_marker()
    yield "array of strings", any_value(["--force", secret]), (unique,)
    secret, unique = secret_marker()
    yield "array of bytes", any_value([secret.encode()]), (unique, *_bytes_forms(secret.encode()))
    secret, unique = secret_marker()
    yield "mixed array", any_value(["--force", 3, secret]), (unique,)
    secret, unique = secret_marker()
    word = plain_marker()
    yield "map", any_value({word: secret}), (unique, word)
    secret, unique = secret_marker()
    yield "nested", any_value({"a": [[{"b": secret}]]}), (unique,)


def _keyvalue_plants(owner: Descriptor, path: list[str], field: str) -> Iterator[Plant]:
    here = ".".join([*path, field])

    def appender(kv: KeyValue) -> Callable[[Message], None]:
        def apply(root: Message) -> None:
            getattr(_target(root, path), field).append(copy.deepcopy(kv))

        return apply

    word = plain_marker()
    yield Plant(
        f"{here}[undeclared key]", appender(KeyValue(key=word, value=any_value("v"))), (word,)
    )
    secret, unique = secret_marker()
    yield Plant(
        f"{here}[secret key]", appender(KeyValue(key=secret, value=any_value("v"))), (unique,)
    )
    for shape, value, forbidden in _value_plants(here):
        key = plain_marker()
        yield Plant(
            f"{here}[undeclared key: {shape}]",
            appender(KeyValue(key=key, value=value)),
            (key, *forbidden),
        )
    declared = DECLARED_STRING_KEY.get(owner.full_name, "cli_telemetry.command")
    for shape, make in (
        ("invalid UTF-8 key", lambda text: KeyValue(key=text, value=any_value("v"))),
        ("invalid UTF-8 value", lambda text: KeyValue(key=declared, value=any_value(text))),
        (
            "invalid UTF-8 in an array",
            lambda text: KeyValue(key=declared, value=any_value(["--force", text])),
        ),
    ):
        placeholder, raw, visible = invalid_utf8()
        yield Plant(f"{here}[{shape}]", appender(make(placeholder)), (visible,), {placeholder: raw})
    for shape, value, forbidden in _value_plants(here):
        yield Plant(
            f"{here}[{declared}: {shape}]", appender(KeyValue(key=declared, value=value)), forbidden
        )


def plants(desc: Descriptor, path: list[str], seen: tuple[str, ...] = ()) -> Iterator[Plant]:
    """Every plant reachable from message ``desc`` at ``path`` (field names from the root)."""
    for fd in desc.fields:
        full = f"{desc.full_name}.{fd.name}"
        here = ".".join([*path, fd.name])
        repeated = fd.is_repeated
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            child = fd.message_type
            if child.full_name == "opentelemetry.proto.common.v1.KeyValue":
                yield from _keyvalue_plants(desc, path, fd.name)
            elif child.full_name not in seen:
                yield from plants(child, [*path, fd.name], (*seen, child.full_name))
            continue
        if fd.type == FieldDescriptor.TYPE_STRING:
            variants: list[tuple[str, str, tuple[str, ...]]] = []
            secret, unique = secret_marker()
            variants.append(("secret", secret, (unique,)))
            if full not in TEXT_FIELDS:
                word = plain_marker()
                variants.append(("word", word, (word,)))
            for label, text, forbidden in variants:
                yield Plant(f"{here} ({label})", _setter(path, fd.name, text, repeated), forbidden)
            placeholder, raw, visible = invalid_utf8()
            yield Plant(
                f"{here} (invalid UTF-8)",
                _setter(path, fd.name, placeholder, repeated),
                (visible,),
                {placeholder: raw},
            )
        elif fd.type == FieldDescriptor.TYPE_BYTES and full not in ID_FIELDS:
            secret, unique = secret_marker()
            # unique part first: ids are cut to 8 or 16 bytes
            value = (unique + secret).encode()[: ID_SIZES.get(fd.name, 64)]
            yield Plant(here, _setter(path, fd.name, value, repeated), _bytes_forms(value))
        elif fd.name.startswith("dropped_") and fd.type == FieldDescriptor.TYPE_UINT32:
            number = 700_000_000 + int(plain_marker()[-8:], 16) % 99_999_999
            yield Plant(here, _setter(path, fd.name, number, repeated), (str(number),))


def _setter(path: list[str], name: str, value: Any, repeated: bool) -> Callable[[Message], None]:
    def apply(root: Message) -> None:
        target = _target(root, path)
        if repeated:
            getattr(target, name).append(value)
        else:
            setattr(target, name, value)

    return apply


def all_plants() -> dict[str, list[Plant]]:
    return {
        "traces": list(plants(base_traces("x").DESCRIPTOR, [])),
        "metrics": list(plants(base_metrics("x").DESCRIPTOR, [])),
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_otlp_field_is_planted_and_nothing_planted_survives(  # type: ignore[no-untyped-def]
    file_collector, protocol: str
) -> None:
    collector = file_collector
    every = all_plants()
    counts = {signal: len(planted) for signal, planted in every.items()}
    assert counts["traces"] > 100, counts
    assert counts["metrics"] > 200, counts
    refused: list[str] = []
    for signal, planted in every.items():
        base = base_traces if signal == "traces" else base_metrics
        for plant in planted:
            request = base(plain_marker())
            plant.apply(request)
            body = encode(protocol, request)
            for placeholder, raw in plant.raw.items():
                body = with_raw_bytes(body, placeholder, raw)
            sent = send(protocol, collector.http_url, collector.grpc_target, signal, body)
            if not sent.accepted:
                refused.append(f"{plant.path}: {sent.status}")
    flush_through(collector, protocol)

    raw_bytes = collector.raw_bytes()
    raw = raw_bytes.decode("utf-8", errors="replace")
    leaked = sorted(
        plant.path
        for planted in every.values()
        for plant in planted
        if any(text in raw for text in plant.forbidden)
    )
    total = sum(len(p) for p in every.values())
    print(f"\n{protocol}: {total} plants, {len(refused)} requests refused, {len(leaked)} leaked")
    assert not leaked, f"{len(leaked)} of {total} planted fields left the collector:\n" + "\n".join(
        leaked
    )
    assert not foreign_members(raw)
    assert not utf8_errors(raw_bytes)
    assert collector.alive()
