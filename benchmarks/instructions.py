"""What telemetry adds to a command, counted in CPU instructions (valgrind's callgrind).

Wall-clock medians on a shared 2-core machine move by 30 % between runs, which hides a 3 ms
budget. An instruction count is the same on every run of the same binary, inputs and
environment, whatever else the machine does. Each state runs the same copies of the example
CLI as ``overhead.py`` (the bare copy has the SDK import replaced by no-op stubs); the count
covers the CLI process only (the detached drainer is not traced). Added instructions are
converted to milliseconds at the bare run's own rate (instructions per ms measured outside
valgrind, in this run), so the ms column is an estimate; the instruction column is exact.

    .venv/bin/python benchmarks/instructions.py [--runs 3] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import clean_env, machine_info, update_results
from overhead import generate_copies

COMMAND = ["stage", "list"]
COLLECTED = re.compile(rb"Collected\s*:\s*(\d+)")

#: (key, label, copy, extra env, budget in M instructions added)
STATES = [
    ("a", "(a) no telemetry (baseline)", "bare", {}, None),
    ("e", "(e) ours, disabled (DEPLOYCTL_TELEMETRY=0)", "ours", {"DEPLOYCTL_TELEMETRY": "0"}, 2.0),
    ("e2", "(e) ours, disabled (DO_NOT_TRACK=1)", "ours", {"DO_NOT_TRACK": "1"}, 2.0),
    ("f", "(f) ours, no endpoint (local only)", "ours", {"DEPLOYCTL_TELEMETRY": "1"}, 15.0),
    (
        "c",
        "(c) ours, endpoint refused (spool + drainer spawn)",
        "ours",
        {"DEPLOYCTL_TELEMETRY": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
        15.0,
    ),
    ("n", "naive, disabled (OTEL_SDK_DISABLED=true)", "naive", {"OTEL_SDK_DISABLED": "true"}, None),
]


def _env(workdir: Path, key: str, extra: dict[str, str]) -> dict[str, str]:
    env = clean_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["XDG_STATE_HOME"] = str(workdir / f"state-{key}")
    env.update(extra)
    return env


def count_instructions(script: Path, env: dict[str, str]) -> int:
    """Instructions executed by one run of the CLI process, under callgrind."""
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, str(script), *COMMAND],
        env=env, capture_output=True, check=False, timeout=300,
    )
    match = COLLECTED.search(result.stderr)
    if not match:
        raise SystemExit(f"callgrind printed no count:\n{result.stderr.decode()[-2000:]}")
    return int(match.group(1))


def wall_ms(script: Path, env: dict[str, str], runs: int) -> float:
    """Median wall time of the bare run, outside valgrind (for the instructions-per-ms rate)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, str(script), *COMMAND], env=env,
                       capture_output=True, check=False)
        times.append((time.perf_counter() - started) * 1000)
    return min(times)  # the machine at full speed: the conservative rate for our cost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="callgrind runs per state")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    workdir = Path(tempfile.mkdtemp(prefix="otel-cli-telemetry-instr-"))
    copies = generate_copies(workdir)
    counts: dict[str, int] = {}
    for key, _label, copy, extra, _budget in STATES:
        env = _env(workdir, key, extra)
        subprocess.run([sys.executable, str(copies[copy]), *COMMAND], env=env,
                       capture_output=True, check=False)  # warm: bytecode, state, notice
        counts[key] = int(statistics.median(
            count_instructions(copies[copy], env) for _ in range(args.runs)
        ))
    base_env = _env(workdir, "a", {})
    base_ms = wall_ms(copies["bare"], base_env, 21)
    rate = counts["a"] / base_ms  # instructions per ms on this machine, now
    info = machine_info()
    lines = [
        f"Instruction counts of `deployctl {' '.join(COMMAND)}` (valgrind callgrind, median "
        f"of {args.runs} runs per state, CLI process only). {info['date']}, {info['machine']}, "
        f"{info['python']}; {info['packages']}.",
        f"Bare run: {counts['a'] / 1e6:.1f} M instructions in {base_ms:.1f} ms wall "
        f"(fastest of 21), so 1 ms ~ {rate / 1e6:.2f} M instructions.",
        "",
        "| state | instructions (M) | added (M) | added, ms at that rate | budget |",
        "|---|---:|---:|---:|---|",
    ]
    for key, label, _copy, _extra, budget in STATES:
        added = counts[key] - counts["a"]
        ms = added / rate
        verdict = "" if budget is None else (
            f"<= +{budget:g} M: {'met' if added / 1e6 <= budget else 'NOT MET'}"
        )
        lines.append(
            f"| {label} | {counts[key] / 1e6:.1f} | "
            f"{'-' if key == 'a' else f'{added / 1e6:+.1f}'} | "
            f"{'-' if key == 'a' else f'{ms:+.1f}'} | {verdict} |"
        )
    lines += ["", "Reproduce: `.venv/bin/python benchmarks/instructions.py`"]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        update_results("instructions", "## Instruction counts (benchmarks/instructions.py)\n\n"
                       + body)
    shutil.rmtree(workdir, ignore_errors=True)
    os.environ.pop("_", None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
