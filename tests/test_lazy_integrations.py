"""An integration's module is loaded only when its framework is (cost of a recording run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import ROOT

CHECK = r"""
import json, sys
import otel_cli_telemetry as telemetry
telemetry.init(app="lazyapp", version="1.0", enabled=True, state_dir=sys.argv[1])
before = sorted(m for m in sys.modules if m.startswith("otel_cli_telemetry.capture.integrations."))
import argparse
parser = argparse.ArgumentParser(prog="lazyapp")
parser.add_subparsers(dest="cmd").add_parser("go")
parser.parse_args(["go"])
after = sorted(m for m in sys.modules if m.startswith("otel_cli_telemetry.capture.integrations."))
print(json.dumps({"before": before, "after": after}))
"""


def test_integrations_load_with_their_framework_and_still_record(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(tmp_path / "state")], env=env, cwd=ROOT,
        capture_output=True, text=True, check=True, timeout=60,
    )
    report = json.loads(result.stdout)
    integrations = "otel_cli_telemetry.capture.integrations."
    assert not {integrations + "argparse", integrations + "typer", integrations + "click"} & set(
        report["before"]
    ), report
    assert integrations + "argparse" in report["after"]
    assert integrations + "typer" not in report["after"]
    history = (tmp_path / "state" / "records.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["attributes"]["cli_telemetry.command"] == "go"
