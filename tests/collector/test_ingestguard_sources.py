"""ingestguard's generated schema table matches the OTLP descriptors of opentelemetry-proto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GENERATOR = Path(__file__).resolve().parents[2] / "collector" / "ingestguard" / "generate_schema.py"


def test_schema_table_is_generated_from_the_installed_otlp_descriptors() -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
