"""Test helpers for CLI authors: assert on your own telemetry, with no network and no files.

As a pytest plugin (registered automatically), it offers the ``cli_telemetry`` fixture::

    def test_deploy_records_its_phases(cli_telemetry):
        result = CliRunner().invoke(cli, ["deploy", "--stage", "dev"])
        (record,) = cli_telemetry.records
        assert record["attributes"]["cli_telemetry.command"] == "deploy"
        assert [p["name"] for p in record["phases"]] == ["build", "upload", "update"]

Records are the redacted dicts the SDK would spool (undeclared keys already dropped, strings
already scrubbed), so a test sees exactly what would leave the machine. Outside pytest, use
:func:`capture_telemetry` as a context manager.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from . import _internal
from .capture import session


@dataclass
class CapturedTelemetry:
    """Records captured while the capture was active."""

    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def commands(self) -> list[str]:
        """``cli_telemetry.command`` of each record, in order."""
        return [r["attributes"].get("cli_telemetry.command", "") for r in self.records]

    def only(self) -> dict[str, Any]:
        """The single record captured (fails the test if there is not exactly one)."""
        assert len(self.records) == 1, f"expected one record, got {len(self.records)}"
        return self.records[0]

    def metric_points(self, name: str) -> list[dict[str, Any]]:
        """Every point recorded on metric ``name``, across records."""
        return [
            p
            for r in self.records
            for m in r.get("metrics", [])
            if m["name"] == name
            for p in m["points"]
        ]


@contextmanager
def capture_telemetry() -> Iterator[CapturedTelemetry]:
    """Send every record to memory, with telemetry on, for the duration of the block."""
    captured = CapturedTelemetry()
    previous_sink = session.sink
    previous_settings = session.settings
    session.sink = captured.records.append
    if session.settings is not None:
        session.settings = session.settings.replace(
            enabled=True,
            debug=False,
            log_path=None,
            decided_by="otel_cli_telemetry.testing",
        )
        # init() may have run while telemetry was off (no capture patches then): add them.
        from . import pipeline
        from .capture.integrations import registry

        pipeline.connect(session.settings)
        registry.instrument(tuple(registry.FRAMEWORKS))
        session.open_process_record()
    try:
        yield captured
    finally:
        session.sink = previous_sink
        session.settings = previous_settings


@pytest.fixture
def cli_telemetry() -> Iterator[CapturedTelemetry]:
    """Capture the telemetry records of the code under test in memory."""
    with capture_telemetry() as captured:
        yield captured


@pytest.fixture
def telemetry_internal_errors_fail(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Turn errors the SDK swallows into test failures (for the SDK's own test suite).

    Tests marked ``swallows_internal_errors`` get the list of swallowed errors instead.
    """
    swallowed: list[str] = []
    previous = _internal.internal_error_handler

    def collect(where: str, exc: BaseException) -> None:
        swallowed.append(f"{where}: {type(exc).__name__}: {exc}")

    _internal.internal_error_handler = collect
    try:
        yield swallowed
    finally:
        _internal.internal_error_handler = previous
    if swallowed and request.node.get_closest_marker("swallows_internal_errors") is None:
        pytest.fail("otel_cli_telemetry swallowed internal errors:\n" + "\n".join(swallowed))
