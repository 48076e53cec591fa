"""Field kinds and strict names: the public API, the schema shape, and each kind's checks."""

from __future__ import annotations

import math
from typing import Any

import pytest

import otel_cli_telemetry as telemetry
from otel_cli_telemetry.privacy.kinds import DROP, Redactor
from otel_cli_telemetry.privacy.scrub import Scrubber
from otel_cli_telemetry.schema import Field, Schema, builtin_fields, field_from_declaration

SCRUB = Scrubber(None, None, None).scrub


def test_the_kinds_are_exported_from_the_package() -> None:
    assert telemetry.Enum("d", values=["b", "a"]).as_dict() == {
        "description": "d",
        "kind": "enum",
        "values": ["a", "b"],
        "type": "string",
    }
    assert telemetry.Integer("d", many=True).type == "int[]"
    assert telemetry.Number("d").type == "double"
    assert telemetry.Text("d").type == "string"
    assert isinstance(telemetry.Bool("d"), telemetry.Field)


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("a description", {"description": "a description", "kind": "identifier", "type": "any"}),
        (
            {"kind": "enum", "description": "d", "values": ["x"]},
            {"description": "d", "kind": "enum", "values": ["x"], "type": "string"},
        ),
        (
            {"kind": "text", "description": "d", "many": True},
            {"description": "d", "kind": "text", "type": "string[]"},
        ),
        (telemetry.Version("d"), {"description": "d", "kind": "version", "type": "string"}),
    ],
)
def test_declarations_in_every_form(declared: object, expected: dict[str, Any]) -> None:
    field = field_from_declaration("k", declared)
    assert field.as_dict() == expected
    assert field_from_declaration("k", field.as_dict()) == field  # as saved in schema.json


@pytest.mark.parametrize(
    "declared",
    [
        "",
        3,
        {"kind": "secret", "description": "d"},
        {"kind": "text", "description": "d", "values": ["a"]},
        {"kind": "enum", "description": "d", "values": []},
        {"kind": "enum", "description": "d", "values": ["has space!"]},
        {"kind": "enum", "description": "d", "values": ["ghp_" + "a1B2c3D4e5" * 4]},
        {"kind": "text"},
    ],
)
def test_bad_declarations_raise(declared: object) -> None:
    """Refused where ``init(fields=)`` takes them (the enum values' grammar and secret
    checks run there, not when a kind is built)."""
    from otel_cli_telemetry.config import InitOptions

    with pytest.raises((ValueError, TypeError), match=r"init\(fields=\.\.\.\): 'k'"):
        InitOptions(app="a", fields={"k": declared})


def test_init_rejects_bad_field_keys_and_kinds(tmp_path: Any) -> None:
    for key in ("Bad Key", "x..y", "ghp_" + "a1B2c3D4e5" * 4, "1starts.with.digit", "x" * 65):
        with pytest.raises(ValueError, match="not a valid name"):
            telemetry.init(app="k", fields={key: "d"}, state_dir=str(tmp_path), enabled=False)
    with pytest.raises(ValueError, match="kind"):
        telemetry.init(
            app="k", fields={"a.b": {"kind": "nope", "description": "d"}}, state_dir=str(tmp_path)
        )


def test_static_metric_and_phase_names_raise_without_repeating_a_secret() -> None:
    token = "npm_" + "Zx8Qw7Er6Ty5Ui4Op3As2Df1Gh0Jk9Lz8Xc7Vb"
    with pytest.raises(ValueError) as caught:
        telemetry.counter(token)
    assert token not in str(caught.value)
    with pytest.raises(ValueError, match="not a valid name"):
        telemetry.histogram("has space")
    with pytest.raises(ValueError, match="unit"):
        telemetry.counter("ok.name", unit="not a unit")
    with pytest.raises(ValueError):
        telemetry.phase("build images")
    assert telemetry.phase("deploy.stacks").name == "deploy.stacks"


def test_the_schema_version_digests_kinds_not_descriptions() -> None:
    base = Schema("a", {"x.y": telemetry.Integer("one")})
    assert Schema("a", {"x.y": telemetry.Integer("other wording")}).version == base.version
    assert Schema("a", {"x.y": telemetry.Number("one")}).version != base.version
    assert Schema("a", {"x.y": "one"}).version != base.version
    enum_a = Schema("a", {"x.y": telemetry.Enum("d", values=["p"])})
    assert Schema("a", {"x.y": telemetry.Enum("d", values=["p", "q"])}).version != enum_a.version


def test_the_schema_dict_carries_a_kind_for_every_attribute() -> None:
    data = Schema("a", {"x.y": telemetry.Enum("d", values=["p"])}).as_dict()
    for section in (
        "span_attributes",
        "phase_attributes",
        "metric_point_attributes",
        "resource_attributes",
    ):
        assert data[section], section
        for key, field in data[section].items():  # type: ignore[attr-defined]
            assert {"description", "kind", "type"} <= set(field), key
    assert data["span_attributes"]["x.y"]["values"] == ["p"]  # type: ignore[index]
    assert data["span_attributes"]["cli_telemetry.flags"]["type"] == "string[]"  # type: ignore[index]
    assert set(builtin_fields()) >= set(data["resource_attributes"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (Field("enum", "d", values=["eu", "us"]), "eu", "eu"),
        (Field("enum", "d", values=["eu", "us"]), "mars", "<other>"),
        (Field("identifier", "d"), "gpt-4o-mini", "gpt-4o-mini"),
        (Field("identifier", "d"), "two words", "two words"),
        (Field("identifier", "d"), "a sentence, with punctuation", "<redacted>"),
        (Field("identifier", "d"), 3, "<redacted>"),
        (Field("identifier", "d", implicit=True), 3, 3),
        (Field("identifier", "d", implicit=True), True, True),
        (Field("identifier", "d", implicit=True), math.inf, DROP),
        (Field("integer", "d"), 7, 7),
        (Field("integer", "d"), True, DROP),
        (Field("integer", "d"), 2**63, DROP),
        (Field("integer", "d"), "7", DROP),
        (Field("number", "d"), 2, 2.0),
        (Field("number", "d"), math.nan, DROP),
        (Field("bool", "d"), False, False),
        (Field("bool", "d"), 0, DROP),
        (Field("version", "d"), "1.4.2", "1.4.2"),
        (Field("version", "d"), "latest", "<invalid-version>"),
        (Field("duration", "d"), "1h30m", "1h30m"),
        (Field("duration", "d"), 1.5, "1.5s"),
        (Field("duration", "d"), "soon", "<invalid-duration>"),
        (
            Field("text", "d"),
            "see https://u:p4ss@example.com/x",
            "see https://<redacted>@example.com/x",
        ),
        (Field("text", "d", many=True), ["a", "b"], ["a", "b"]),
        (Field("text", "d", many=True), "not a list", DROP),
    ],
)
def test_each_kind(field: Field, value: object, expected: object) -> None:
    redactor = Redactor(SCRUB)
    assert redactor.value(field, value) == expected or (
        expected is DROP and redactor.value(field, value) is DROP
    )
    converted = field.kind == "duration" and isinstance(value, float)  # seconds -> "1.5s"
    assert (redactor.count > 0) == (expected != value and not converted)


def test_every_built_in_attribute_has_a_kind() -> None:
    from otel_cli_telemetry.schema import BUILTIN_RESOURCE_ATTRIBUTES, BUILTIN_SPAN_ATTRIBUTES

    assert set(BUILTIN_SPAN_ATTRIBUTES) | set(BUILTIN_RESOURCE_ATTRIBUTES) == set(builtin_fields())


def test_a_secret_enum_value_is_refused_where_the_fields_are_declared() -> None:
    """The grammar and secret checks of enum values run where ``init(fields=)`` takes the
    field (so a module-level kind in a run switched off loads no grammar or rule index)."""
    token = "ghp_" + "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2"
    from otel_cli_telemetry.config import InitOptions

    field = telemetry.Enum("a target", values=[token, "prod"])  # built: no check yet
    with pytest.raises(ValueError) as caught:
        InitOptions(app="a", fields={"x.target": field})
    assert token not in str(caught.value)
    assert "'x.target'" in str(caught.value)
    odd = telemetry.Enum("a target", values=["semi;colon"])
    with pytest.raises(ValueError, match="not allowed"):
        InitOptions(app="a", fields={"x.target": odd})
    with pytest.raises(ValueError, match="not allowed"):
        InitOptions(app="a", fields={"x.target": {"kind": "enum", "description": "d",
                                                   "values": ["semi;colon"]}})
