"""Issue 11's hostile cases, each over OTLP HTTP/protobuf, HTTP/JSON and gRPC.

Every case plants unique markers where the schema has no place for them (schema_url,
entity refs, exemplars, metric metadata, a duplicated key's second value, bytes inside an
array, invalid UTF-8) beside a clean span and point of the same request, then flushes the
pipeline with a sentinel and reads what the file overlay wrote. It passes when no marker
and no member outside the schema left the collector, every output line is valid UTF-8, no
attribute list names a key twice, and the clean parts of the request still arrived (so a
collector that drops everything cannot pass).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from google.protobuf import json_format
from hostile_support import (
    duplicated_keys,
    encodings_of,
    flush_through,
    foreign_members,
    invalid_utf8,
    leaks,
    plain_marker,
    secret_marker,
    sentinel_resource,
    utf8_errors,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from otlp_builders import (
    PROTOCOLS,
    any_value,
    counter_metric,
    encode,
    histogram_metric,
    kvs,
    metrics_request,
    new_span_id,
    new_trace_id,
    send,
    span,
    trace_json_with_value,
    trace_request,
    trace_request_bytes_with_value,
    with_raw_bytes,
)

pytestmark = pytest.mark.collector


@dataclass
class Case:
    """The requests of one case (already encoded for a protocol) and what must not leak."""

    traces: ExportTraceServiceRequest
    metrics: ExportMetricsServiceRequest
    forbidden: dict[str, str] = field(default_factory=dict)
    #: placeholder -> raw bytes of the same length, swapped in after encoding
    raw: dict[str, bytes] = field(default_factory=dict)
    installation_id: str = ""


def clean_requests() -> tuple[ExportTraceServiceRequest, ExportMetricsServiceRequest, str]:
    """A command span and its duration point as the SDK sends them, plus a control id."""
    installation_id = str(uuid.uuid4())
    resource = sentinel_resource(installation_id)
    command = span(
        "deployctl deploy",
        {
            "cli_telemetry.command": "deploy",
            "process.exit.code": 0,
            "cli_telemetry.flags": ["--force"],
        },
    )
    traces = trace_request(resource, [command])
    metrics = metrics_request(
        resource,
        [
            histogram_metric(
                "cli_telemetry.command.duration",
                [0.2],
                {"cli_telemetry.command": "deploy", "process.exit.code": 0},
            ),
            counter_metric("deploy.bytes_uploaded", 4096, {"deploy.change": "added"}, unit="By"),
        ],
    )
    return traces, metrics, installation_id


def hostile_span(attributes: list[KeyValue], name: str = "deployctl deploy") -> Any:
    out = span(name, {}, trace_id=new_trace_id())
    out.attributes.extend(attributes)
    return out


def kv(key: str, value: Any) -> KeyValue:
    return KeyValue(key=key, value=any_value(value))


# --- the cases -----------------------------------------------------------------------


def case_schema_url() -> Case:
    traces, metrics, installation_id = clean_requests()
    forbidden: dict[str, str] = {}
    for signal, request in (("traces", traces), ("metrics", metrics)):
        password = plain_marker()
        key, unique = secret_marker()
        scope_unique = plain_marker()
        resource_url = f"https://deploy:{password}@schemas.corp.example.com/1.26.0"
        scope_url = f"https://schemas.example.com/{scope_unique}?AWSAccessKeyId={key[7:]}&x=1"
        if signal == "traces":
            rs = request.resource_spans[0]
            rs.schema_url = resource_url
            rs.scope_spans[0].schema_url = scope_url
        else:
            rm = request.resource_metrics[0]
            rm.schema_url = resource_url
            rm.scope_metrics[0].schema_url = scope_url
        forbidden |= {
            f"{signal}: password in the resource schema_url": password,
            f"{signal}: AWS key in the scope schema_url": unique,
            f"{signal}: scope schema_url path": scope_unique,
        }
    return Case(traces, metrics, forbidden, installation_id=installation_id)


def case_entity_refs() -> Case:
    traces, metrics, installation_id = clean_requests()
    forbidden: dict[str, str] = {}
    for signal, resource in (
        ("traces", traces.resource_spans[0].resource),
        ("metrics", metrics.resource_metrics[0].resource),
    ):
        password, type_marker, desc_key = plain_marker(), plain_marker(), plain_marker()
        secret, unique = secret_marker()
        resource.entity_refs.add(
            schema_url=f"https://svc:{password}@schemas.example.com/entity",
            type=f"host-{type_marker}",
            id_keys=["service.name", secret],
            description_keys=[desc_key],
        )
        forbidden |= {
            f"{signal}: entity ref schema_url password": password,
            f"{signal}: entity ref type": type_marker,
            f"{signal}: entity ref id key": unique,
            f"{signal}: entity ref description key": desc_key,
        }
    return Case(traces, metrics, forbidden, installation_id=installation_id)


def case_exemplars() -> Case:
    traces, metrics, installation_id = clean_requests()
    forbidden: dict[str, str] = {}
    histogram = metrics.resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points[0]
    counter = metrics.resource_metrics[0].scope_metrics[0].metrics[1].sum.data_points[0]
    for name, point, value in (("histogram", histogram, "as_double"), ("sum", counter, "as_int")):
        secret, unique = secret_marker()
        undeclared = plain_marker()
        email = f"{plain_marker()}@example.com"
        trace_id, span_id = new_trace_id(), new_span_id()
        exemplar = point.exemplars.add(
            time_unix_nano=point.time_unix_nano,
            trace_id=trace_id,
            span_id=span_id,
            filtered_attributes=kvs(
                {"cli_telemetry.command": secret, "user.email": email, "exemplar.key": undeclared}
            ),
        )
        setattr(exemplar, value, 3)
        forbidden |= {
            f"{name} exemplar: secret under a declared key": unique,
            f"{name} exemplar: e-mail": email,
            f"{name} exemplar: undeclared value": undeclared,
            f"{name} exemplar: trace id": encodings_of(trace_id)[1],
            f"{name} exemplar: span id": encodings_of(span_id)[1],
        }
    return Case(traces, metrics, forbidden, installation_id=installation_id)


def case_metric_metadata() -> Case:
    traces, metrics, installation_id = clean_requests()
    forbidden: dict[str, str] = {}
    for metric in metrics.resource_metrics[0].scope_metrics[0].metrics:
        secret, unique = secret_marker()
        note = plain_marker()
        metric.metadata.extend(kvs({"cli_telemetry.command": secret, "metadata.note": note}))
        forbidden |= {f"{metric.name} metadata secret": unique, f"{metric.name} metadata": note}
    return Case(traces, metrics, forbidden, installation_id=installation_id)


def case_duplicated_keys() -> Case:
    """A good first value, then a map, bytes or list under the same key."""
    traces, metrics, installation_id = clean_requests()
    forbidden: dict[str, str] = {}

    def second(kind: str, where: str) -> Any:
        secret, unique = secret_marker()
        forbidden[f"{where}: {kind} after a good value"] = unique
        if kind == "map":
            return {"token": secret}
        if kind == "bytes":
            value = secret.encode()
            forbidden[f"{where}: {kind} after a good value (base64)"] = encodings_of(value)[0]
            return value
        return ["--stage", secret]

    hostile = hostile_span(
        [
            kv("cli_telemetry.command", "deploy"),
            kv("cli_telemetry.command", second("map", "span cli_telemetry.command")),
            kv("cli_telemetry.flags", ["--force"]),
            kv("cli_telemetry.flags", second("list", "span cli_telemetry.flags")),
            kv("deploy.change", "added"),
            kv("deploy.change", second("bytes", "span deploy.change")),
            kv("process.exit.code", 0),
        ]
    )
    traces.resource_spans[0].scope_spans[0].spans.append(hostile)
    for resource, where in (
        (traces.resource_spans[0].resource, "traces resource"),
        (metrics.resource_metrics[0].resource, "metrics resource"),
    ):
        resource.attributes.extend(
            [
                kv("service.version", second("map", f"{where} service.version")),
                kv("os.type", second("bytes", f"{where} os.type")),
                kv("host.arch", second("list", f"{where} host.arch")),
            ]
        )
    for metric in metrics.resource_metrics[0].scope_metrics[0].metrics:
        point = (metric.histogram if metric.HasField("histogram") else metric.sum).data_points[0]
        first_key = point.attributes[0].key
        point.attributes.extend(
            [kv(first_key, second(kind, f"{metric.name} {first_key}")) for kind in ("map", "list")]
        )
        point.attributes.append(kv(first_key, second("bytes", f"{metric.name} {first_key}")))
    return Case(traces, metrics, forbidden, installation_id=installation_id)


def case_bytes_in_arrays() -> Case:
    traces, metrics, installation_id = clean_requests()
    forbidden: dict[str, str] = {}

    def planted(where: str) -> bytes:
        secret, unique = secret_marker()
        value = secret.encode()
        forbidden[f"{where} (base64)"] = encodings_of(value)[0]
        forbidden[where] = unique
        return value

    hostile = hostile_span(
        [
            kv("cli_telemetry.command", "deploy"),
            kv("cli_telemetry.flags", [planted("span cli_telemetry.flags [bytes]")]),
            kv("deploy.change", ["added", planted("span deploy.change [str, bytes]")]),
        ]
    )
    traces.resource_spans[0].scope_spans[0].spans.append(hostile)
    traces.resource_spans[0].resource.attributes.append(
        kv("os.version", [planted("resource os.version [bytes]")])
    )
    point = metrics.resource_metrics[0].scope_metrics[0].metrics[1].sum.data_points[0]
    point.attributes.append(kv("deploy.functions.added", [planted("point [bytes]")]))
    return Case(traces, metrics, forbidden, installation_id=installation_id)


def case_invalid_utf8() -> Case:
    """Invalid UTF-8 in a span name, a value, a key, a resource value and a point value."""
    traces, metrics, installation_id = clean_requests()
    forbidden: dict[str, str] = {}
    raw: dict[str, bytes] = {}

    def planted(where: str) -> str:
        placeholder, raw[placeholder], forbidden[where] = invalid_utf8()
        return placeholder

    hostile = hostile_span(
        [
            kv("cli_telemetry.command", planted("span value")),
            kv(planted("span key"), "deploy"),
            kv("cli_telemetry.flags", ["--force", planted("span array element")]),
        ],
        name=f"deployctl {planted('span name')}",
    )
    traces.resource_spans[0].scope_spans[0].spans.append(hostile)
    traces.resource_spans[0].resource.attributes.append(kv("os.version", planted("resource value")))
    traces.resource_spans[0].scope_spans[0].scope.version = planted("scope version")
    point = metrics.resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points[0]
    point.attributes.append(kv("error.type", planted("point value")))
    return Case(traces, metrics, forbidden, raw, installation_id=installation_id)


CASES: dict[str, Callable[[], Case]] = {
    "schema_url": case_schema_url,
    "entity_refs": case_entity_refs,
    "exemplars": case_exemplars,
    "metric_metadata": case_metric_metadata,
    "duplicated_keys": case_duplicated_keys,
    "bytes_in_arrays": case_bytes_in_arrays,
    "invalid_utf8": case_invalid_utf8,
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case_name", list(CASES))
def test_hostile_case(file_collector, case_name: str, protocol: str) -> None:  # type: ignore[no-untyped-def]
    collector = file_collector
    case = CASES[case_name]()
    answers = {}
    for signal, request in (("traces", case.traces), ("metrics", case.metrics)):
        body = encode(protocol, request)
        for placeholder, raw in case.raw.items():
            if placeholder.encode() in body:
                body = with_raw_bytes(body, placeholder, raw)
        answers[signal] = send(protocol, collector.http_url, collector.grpc_target, signal, body)
    flush_through(collector, protocol)

    raw_bytes = collector.raw_bytes()
    raw = raw_bytes.decode("utf-8", errors="replace")
    problems = {
        "markers that left the collector": leaks(raw, case.forbidden),
        "members outside the schema": foreign_members(raw),
        "lines that are not valid UTF-8": utf8_errors(raw_bytes),
        "attribute lists with a duplicated key": duplicated_keys(collector.records()),
    }
    problems = {what: found for what, found in problems.items() if found}
    assert not problems, f"{case_name} over {protocol} (answers {answers}): {problems}"

    # The clean span and points of the same requests still arrive.
    def ours(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        key = "service.instance.id"
        return [i for i in items if i["resource"].get(key) == case.installation_id]

    def clean(spans: list[dict[str, Any]]) -> bool:
        return any(s["attributes"].get("cli_telemetry.flags") == ["--force"] for s in ours(spans))

    def all_points(points: list[dict[str, Any]]) -> bool:
        names = {p["name"] for p in ours(points)}
        return names >= {"cli_telemetry.command.duration", "deploy.bytes_uploaded"}

    collector.wait_for_spans(clean)  # fails after its timeout: the clean span was lost
    collector.wait_for_metrics(all_points)
    assert collector.alive()


def _oneof_pairs() -> list[tuple[str, bytes, str, str]]:
    """(key, AnyValue wire bytes, JSON text, unique secret part): two members of the
    AnyValue oneof in one value. On the wire the last one wins (protobuf merge rules); in
    JSON both members sit in one object. Either way a map or bytes value hides behind a
    good one."""
    out = []
    for key, good, bad_kind in (
        ("cli_telemetry.command", "deploy", "map"),
        ("cli_telemetry.flags", ["--force"], "bytes"),
        ("error.type", "QuotaError", "map-first"),
    ):
        secret, unique = secret_marker()
        bad = {"token": secret} if bad_kind != "bytes" else secret.encode()
        good_value, bad_value = any_value(good), any_value(bad)
        first, second = (
            (bad_value, good_value) if bad_kind == "map-first" else (good_value, bad_value)
        )
        wire = first.SerializeToString() + second.SerializeToString()
        members = {
            **json.loads(json_format.MessageToJson(first, indent=None)),
            **json.loads(json_format.MessageToJson(second, indent=None)),
        }
        out.append((key, wire, json.dumps(members), unique))
    return out


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_two_oneof_members_in_one_value(file_collector, protocol: str) -> None:  # type: ignore[no-untyped-def]
    """A value carrying two members of AnyValue's oneof (a good string, then a map or bytes
    holding a secret) on a declared key: nothing of the hidden member gets out."""
    collector = file_collector
    forbidden = {}
    answers = []
    for key, wire, text, unique in _oneof_pairs():
        request, _, _ = clean_requests()
        attributes = request.resource_spans[0].scope_spans[0].spans[0].attributes
        for kv in [kv for kv in attributes if kv.key == key]:
            attributes.remove(kv)  # one value under the key: no duplicate, only the oneof
        if protocol == "http/json":
            body = trace_json_with_value(request, key, text)
        else:
            body = trace_request_bytes_with_value(request, key, wire)
        answers.append(send(protocol, collector.http_url, collector.grpc_target, "traces", body))
        forbidden[f"{key}: the second oneof member"] = unique
    flush_through(collector, protocol)
    raw_bytes = collector.raw_bytes()
    raw = raw_bytes.decode("utf-8", errors="replace")
    assert not leaks(raw, forbidden), (answers, leaks(raw, forbidden))
    assert not foreign_members(raw), foreign_members(raw)
    assert collector.alive()
