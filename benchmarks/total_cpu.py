"""Total CPU per command with the background delivery included (every descendant counted).

A CLI's own run time hides the work it hands to a detached process. Here each scenario runs
in a fresh *session* process that makes itself the child subreaper
(``prctl(PR_SET_CHILD_SUBREAPER)``): the detached drainer a command starts (``setsid``,
parent gone when the command exits) is reparented to the session, which runs the commands
at the given pace, then waits for every descendant to exit, and reports
``getrusage(RUSAGE_CHILDREN)``: the user+system CPU of the commands AND of every drainer,
whatever they detached. The endpoint (the real collector) is the harness's child, not the
session's, so its CPU is not counted.

Scenarios, each with the example CLI (``deployctl stage list`` / ``deploy`` alternating),
endpoint up: no telemetry (bare), ours, the naive OpenTelemetry setup (anchor); at an
interactive pace (one command every ``--pace`` s) and back-to-back (a burst). Added CPU per
command = (total - bare total) / commands. The drainer's own accounting (its delivery log:
CPU per record, runs) is reported next to it.

    .venv/bin/python benchmarks/total_cpu.py [--commands 10] [--pace 2] [--reps 2] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import clean_env, machine_info, median, start_endpoint, update_results
from overhead import generate_copies

COMMANDS = (["stage", "list"], ["deploy"])
BUDGET_MS = 15.0

#: Runs in its own process: subreaper, paced commands, wait for every descendant.
SESSION = r'''
import ctypes, json, os, resource, sys, time
spec = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed")
actions = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, flags, 0)
           for fd, flags in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY))]
started = time.monotonic()
for i, argv in enumerate(spec["commands"]):
    due = started + i * spec["pace"]
    if time.monotonic() < due:
        time.sleep(due - time.monotonic())
    pid = os.posix_spawn(argv[0], argv, spec["env"], file_actions=actions)
    os.waitpid(pid, 0)
last_command = time.monotonic()
while True:  # drainers, reparented to us when their command exited
    try:
        os.wait()
    except ChildProcessError:
        break
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000.0,
                  "commands_s": last_command - started,
                  "background_s": time.monotonic() - last_command}))
'''


def session(commands: list[list[str]], env: dict[str, str], pace: float) -> dict[str, Any]:
    spec = json.dumps({"commands": commands, "env": env, "pace": pace})
    result = subprocess.run([sys.executable, "-c", SESSION, spec], capture_output=True,
                            text=True, check=True, timeout=600)
    return dict(json.loads(result.stdout))


def session_instructions(commands: list[list[str]], env: dict[str, str], logs: Path) -> int:
    """Instructions of every process of a session (callgrind follows the drainers the
    commands start; each process writes its own count to ``logs/vg.<pid>``)."""
    logs.mkdir(parents=True, exist_ok=True)
    wrapped = [
        [shutil.which("valgrind") or "/usr/bin/valgrind", "--tool=callgrind",
         "--trace-children=yes", "--callgrind-out-file=/dev/null",
         f"--log-file={logs}/vg.%p", *argv]
        for argv in commands
    ]
    session(wrapped, env, 0.0)
    total = 0
    for log in logs.glob("vg.*"):
        found = re.search(r"Collected\s*:\s*(\d+)", log.read_text(errors="replace"))
        if found:
            total += int(found.group(1))
    return total


def drainer_log(state: Path) -> list[dict[str, Any]]:
    path = state / "deployctl" / "otel-cli-telemetry" / "delivery.jsonl"
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=10)
    parser.add_argument("--pace", type=float, default=2.0, help="seconds between commands")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--endpoint", default="auto", choices=("auto", "collector", "python"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--instructions", action="store_true",
                        help="also count instructions of whole sessions (valgrind, slow)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="otel-cli-telemetry-totalcpu-"))
    copies = generate_copies(workdir)
    endpoint = start_endpoint("up", workdir, args.endpoint)
    started = time.monotonic()
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    logs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        base = clean_env()
        base["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint.url
        variants = {
            "bare": {},
            "ours": {"DEPLOYCTL_TELEMETRY": "1"},
            "naive": {},
        }
        for variant, extra in variants.items():  # warm: bytecode
            env = {**base, **extra, "XDG_STATE_HOME": str(workdir / "warm")}
            subprocess.run([sys.executable, str(copies[variant]), "stage", "list"], env=env,
                           capture_output=True, check=False)
        time.sleep(1)
        n = 0
        for rep in range(args.reps):
            for pace_name, pace in (("interactive", args.pace), ("burst", 0.0)):
                for variant, extra in variants.items():
                    n += 1
                    state = workdir / f"state-{n}"
                    env = {**base, **extra, "XDG_STATE_HOME": str(state)}
                    commands = [[sys.executable, str(copies[variant]), *COMMANDS[i % 2]]
                                for i in range(args.commands)]
                    accepted_before = endpoint.accepted_spans()
                    result = session(commands, env, pace)
                    time.sleep(0.5)
                    after = endpoint.accepted_spans()
                    result["spans"] = (
                        None if after is None or accepted_before is None
                        else after - accepted_before
                    )
                    rows.setdefault((pace_name, variant), []).append(result)
                    logs.setdefault((pace_name, variant), []).extend(drainer_log(state))
                    print(f"rep {rep} {pace_name:11} {variant:5} {result}", file=sys.stderr)
        counted: dict[str, int] = {}
        if args.instructions:
            for variant in ("bare", "ours"):
                n += 1
                state = workdir / f"state-{n}"
                env = {**base, **variants[variant], "XDG_STATE_HOME": str(state)}
                commands = [[sys.executable, str(copies[variant]), *COMMANDS[i % 2]]
                            for i in range(args.commands)]
                counted[variant] = session_instructions(commands, env, workdir / f"vg-{n}")
                print(f"instructions {variant}: {counted[variant]:,}", file=sys.stderr)
    finally:
        endpoint.close()
    info = machine_info()
    took = time.monotonic() - started
    lines = [
        f"- Date: {info['date']}; {info['machine']}; load average {info['load']}; "
        f"tree {info['tree']}.",
        f"- {info['python']}; {info['packages']}.",
        f"- Endpoint: {endpoint.description}. {args.commands} commands per session "
        f"(`stage list` / `deploy` alternating), {args.reps} sessions per cell, median; "
        f"interactive = one command every {args.pace:g} s, burst = back-to-back; "
        f"took {took:.0f} s.",
        "- CPU = user+system of every process of the session (the commands and every "
        "detached drainer, reparented to a subreaper session and waited for), divided by "
        "the commands.",
        "- Reproduce: `.venv/bin/python benchmarks/total_cpu.py`",
        "",
        "| pace | setup | CPU per command ms | added ms | drainer runs | drainer CPU per "
        "record ms (its own log) | spans accepted | background after last command s | "
        "budget |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for pace_name in ("interactive", "burst") if rows else ():
        bare = median(r["cpu_ms"] for r in rows[(pace_name, "bare")]) / args.commands
        for variant in ("bare", "ours", "naive"):
            cell = rows[(pace_name, variant)]
            per_command = median(r["cpu_ms"] for r in cell) / args.commands
            added = per_command - bare
            exits = [e for e in logs[(pace_name, variant)] if e.get("outcome") == "exit"]
            runs = f"{len(exits) / len(cell):.1f}" if variant == "ours" else "-"
            per_record = [e["cpu_ms_per_record"] for e in exits if e.get("cpu_ms_per_record")]
            self_cost = f"{median(per_record):.1f}" if per_record else "-"
            spans = median(r["spans"] for r in cell if r["spans"] is not None) \
                if any(r["spans"] is not None for r in cell) else float("nan")
            background = median(r["background_s"] for r in cell)
            verdict = ""
            if variant == "ours":
                verdict = f"<= {BUDGET_MS:g} ms: {'met' if added <= BUDGET_MS else 'NOT MET'}"
            elif variant == "naive":
                verdict = "anchor"
            lines.append(
                f"| {pace_name} | {variant} | {per_command:.1f} | "
                f"{'-' if variant == 'bare' else f'{added:+.1f}'} | {runs} | {self_cost} | "
                f"{spans:.0f} | {background:.1f} | {verdict} |"
            )
    if counted:
        added = (counted["ours"] - counted["bare"]) / args.commands
        lines += [
            "",
            f"Instructions, every process of a {args.commands}-command session under valgrind "
            f"(callgrind, `--trace-children=yes`: the commands and the drainer they start; "
            f"commands back-to-back): bare {counted['bare'] / 1e6:,.0f} M, ours "
            f"{counted['ours'] / 1e6:,.0f} M, **{added / 1e6:+.1f} M per command** "
            "(exact, whatever the load).",
        ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        update_results("totalcpu", "## Total CPU per command, background delivery included "
                       "(`benchmarks/total_cpu.py`)\n\n" + body)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
