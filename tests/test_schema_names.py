"""The built-in names: in this SDK's namespace or registered, no name that is also the
namespace of another, and one rename map from the previous release's names."""

from __future__ import annotations

from otel_cli_telemetry import schema


def _builtin_names() -> set[str]:
    return set(schema.BUILTIN_SPAN_ATTRIBUTES) | set(schema.BUILTIN_RESOURCE_ATTRIBUTES)


def test_own_names_are_in_the_cli_telemetry_namespace() -> None:
    registered = ("process.", "error.", "service.", "os.", "host.", "telemetry.sdk.")
    for name in _builtin_names():
        assert name.startswith(("cli_telemetry.", *registered)), name
    assert schema.COMMAND_DURATION_METRIC.startswith("cli_telemetry.")
    assert not [n for n in _builtin_names() if n.startswith("cli.")]


def test_no_attribute_name_is_the_namespace_of_another() -> None:
    names = _builtin_names()
    clashes = [(a, b) for a in names for b in names if b.startswith(a + ".")]
    assert clashes == []


def test_the_rename_map_leads_to_current_names_only() -> None:
    names = _builtin_names()
    assert set(schema.RENAMED_ATTRIBUTES.values()) <= names
    assert not set(schema.RENAMED_ATTRIBUTES) & names
    assert not schema.REMOVED_ATTRIBUTES & names
    assert set(schema.RENAMED_METRICS.values()) == {schema.COMMAND_DURATION_METRIC}
    # every cli.* built-in of the previous release (schema revision 2) is renamed or removed
    revision_2 = {
        "cli.command", "cli.flags", "cli.interactive", "cli.ci", "cli.ci.provider", "cli.agent",
        "cli.telemetry.overhead_ms", "cli.telemetry.dropped", "cli.telemetry.redacted",
        "cli.telemetry.invalid_utf8", "cli.installation.id", "cli.telemetry.schema_version",
    }  # fmt: skip
    assert set(schema.RENAMED_ATTRIBUTES) | schema.REMOVED_ATTRIBUTES == revision_2


def test_upgrade_renames_old_names_and_drops_removed_ones_in_place() -> None:
    old = {
        "cli.command": "deploy",
        "cli.ci": False,
        "cli.installation.id": "7b0c0a52-0000-4000-8000-000000000000",
        "deploy.stage": "dev",
    }
    upgraded = schema.upgrade_attributes(old)
    assert upgraded is old
    assert old == {"cli_telemetry.command": "deploy", "cli_telemetry.ci.detected": False,
                   "deploy.stage": "dev"}  # fmt: skip
    # a current name already present wins over its old name
    both = {"cli.command": "old", "cli_telemetry.command": "new"}
    assert schema.upgrade_attributes(both) == {"cli_telemetry.command": "new"}
    current = {"cli_telemetry.command": "deploy"}
    assert schema.upgrade_attributes(current) == {"cli_telemetry.command": "deploy"}


def test_lookup_reads_a_current_name_or_its_previous_one() -> None:
    assert schema.lookup({"cli.command": "a"}, "cli_telemetry.command") == "a"
    assert schema.lookup({"cli_telemetry.command": "b", "cli.command": "a"},
                         "cli_telemetry.command") == "b"  # fmt: skip
    assert schema.lookup({}, "cli_telemetry.sdk.dropped", 0) == 0
    assert schema.lookup({"x": 1}, "process.pid", "none") == "none"
