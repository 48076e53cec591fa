"""What the privacy layer costs: a typical record, and a worst-case 4 KiB free-text value.

Three numbers per case, each in a fresh interpreter so caches start cold as in a CLI run:

- **cold µs**: the first call in the process (imports of the privacy modules excluded:
  they are measured by ``instructions.py`` as part of the whole run), including reading
  ``rules.json`` and compiling the rules the value reaches, when it does;
- **warm µs**: the median of later calls (the same process, rules compiled);
- **instructions** (valgrind's callgrind, when installed): the instructions the first call
  adds to a process that only imported the modules. Exact on every run, unlike times on a
  shared machine.

The typical record is what ``examples/deploy/deployctl.py deploy`` sends: built-in span and
resource attributes, an enum, integers, a bool, a phase and metric points. The worst case is
4 KiB of text dense in rule keywords and token-like runs (every run is a candidate), as a
``Text`` field value.

    .venv/bin/python benchmarks/privacy_cost.py [--no-write] [--no-callgrind]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import ROOT, machine_info, update_results

SETUP = r"""
import json, random, string, sys, time
from otel_cli_telemetry import Text, Enum, Integer, Bool
from otel_cli_telemetry.privacy import allowlist, rules
from otel_cli_telemetry.privacy.scrub import Scrubber
from otel_cli_telemetry.schema import Schema

schema = Schema("deployctl", {
    "deploy.change": Enum("kind of change", values=["added", "updated", "removed"]),
    "deploy.functions.added": Integer("functions added"),
    "deploy.infrastructure_changed": Bool("infrastructure changed"),
    "deploy.note": Text("a note"),
})
scrubber = Scrubber("/home/alice", "alice", "alice-laptop.example.com")

def typical():
    return {
        "v": 1, "app": "deployctl", "name": "deployctl deploy",
        "attributes": {
            "process.executable.name": "deployctl", "process.exit.code": 0, "process.pid": 4242,
            "cli_telemetry.command": "deploy", "cli_telemetry.flags": ["--stage"],
            "process.interactive": True, "cli_telemetry.ci.detected": False,
            "deploy.functions.added": 3, "deploy.infrastructure_changed": False,
        },
        "resource": {
            "service.name": "deployctl", "service.version": "1.4.2", "os.type": "linux",
            "os.version": "6.8.0-1014-azure", "host.arch": "amd64",
            "process.runtime.name": "cpython", "process.runtime.version": "3.11.7",
            "service.instance.id": "0b3f5c2e-1d4a-4c6b-9a8e-7f6d5c4b3a21",
            "cli_telemetry.schema.version": "2.3f2a9c0b",
            "telemetry.sdk.name": "otel_cli_telemetry",
            "telemetry.sdk.language": "python", "telemetry.sdk.version": "0.1.0",
        },
        "phases": [{"name": "build", "attributes": {}}, {"name": "upload", "attributes": {}}],
        "metrics": [{"name": "deploy.functions.changed", "kind": "counter", "unit": "{function}",
                     "description": "functions changed, by kind",
                     "points": [{"value": 3, "attributes": {"deploy.change": "added"}}]}],
    }

def worst_text():
    rng = random.Random(4)
    words = ["password=", "token:", "https://", "AKIA", "ghp_", "/home/", "Bearer", "key-",
             "user@", "10.0.", "+1 415", "sk-", ".corp", "eyJ", "xoxb-", "-----BEGIN"]
    parts, size = [], 0
    while size < 4096:
        part = rng.choice(words) + "".join(
            rng.choice(string.ascii_letters + string.digits) for _ in range(rng.randrange(8, 30)))
        parts.append(part)
        size += len(part) + 1
    return " ".join(parts)[:4096]

def worst_record():
    record = typical()
    record["attributes"]["deploy.note"] = worst_text()
    return record

case = {"typical": typical, "worst-4k-text": worst_record}[sys.argv[1]]
"""

TIMED = (
    SETUP
    + r"""
record = case()
started = time.perf_counter_ns()
allowlist.redact_record(record, schema, scrubber.scrub)
cold = (time.perf_counter_ns() - started) / 1e3
loaded = rules._loaded is not None
warm = []
for _ in range(int(sys.argv[2])):
    record = case()
    started = time.perf_counter_ns()
    allowlist.redact_record(record, schema, scrubber.scrub)
    warm.append((time.perf_counter_ns() - started) / 1e3)
warm.sort()
print(json.dumps({"cold_us": cold, "warm_us": warm[len(warm) // 2], "rules_loaded": loaded}))
"""
)

CALLGRIND = (
    SETUP
    + r"""
record = case()
if sys.argv[2] == "1":
    allowlist.redact_record(record, schema, scrubber.scrub)
"""
)


def timed(case: str, repeats: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", TIMED, case, str(repeats)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    data: dict[str, float] = json.loads(result.stdout)
    return data


def instructions(case: str, redact: bool) -> int | None:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                valgrind, "--tool=callgrind", f"--callgrind-out-file={out}",
                sys.executable, "-c", CALLGRIND, case, "1" if redact else "0",
            ],
            capture_output=True,
            check=True,
            cwd=ROOT,
        )  # fmt: skip
        for line in out.read_text().splitlines():
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--no-callgrind", action="store_true")
    args = parser.parse_args()
    rows = []
    for case in ("typical", "worst-4k-text"):
        times = timed(case, args.repeats if case == "typical" else max(20, args.repeats // 10))
        added = None
        if not args.no_callgrind:
            base, full = instructions(case, False), instructions(case, True)
            added = None if base is None or full is None else full - base
        rows.append((case, times, added))
        print(case, times, added, flush=True)
    info = machine_info()
    lines = [
        "## Privacy layer cost (`benchmarks/privacy_cost.py`)",
        "",
        f"Machine: {info.get('machine', '')}; Python {sys.version.split()[0]}. One record "
        "through `privacy.allowlist.redact_record` (kinds, names, scrubbing), in a fresh "
        "interpreter: cold = first call (reads rules.json and compiles the rules reached, if "
        "any), warm = median of later calls; instructions = what the first call adds "
        "(callgrind).",
        "",
        "| case | cold µs | warm µs | rules.json read | instructions added (first call) |",
        "|---|---|---|---|---|",
    ]
    for case, times, added in rows:
        lines.append(
            f"| {case} | {times['cold_us']:.0f} | {times['warm_us']:.0f} | "
            f"{'yes' if times['rules_loaded'] else 'no'} | "
            f"{'n/a' if added is None else f'{added / 1e6:.2f} M'} |"
        )
    body = "\n".join(lines) + "\n"
    print(body)
    if not args.no_write:
        update_results("privacy", body)


if __name__ == "__main__":
    main()
