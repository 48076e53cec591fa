"""Where the SDK's in-process time goes: imports, ``init()``, and the end of the command.

Each measurement runs in a fresh interpreter (bytecode cached, as on a real install) that
imports click, then the SDK, calls ``init()`` exactly as ``examples/deploy/deployctl.py`` does
(the example is loaded with ``runpy``; its own ``init`` call is the one measured), and drives
``cli.main([...], standalone_mode=False)``:

1. ``-X importtime``: modules each phase imports (after ``import click``), median of N runs;
2. wall time of each phase without a profiler (``import``, ``init``, ``session.finish`` = the
   end-of-command path), median of N runs, with the SDK's own ``cli_telemetry.sdk.overhead_ms``;
3. cProfile of ``init()`` and of the command (whose end path is ``session.finish``).

Usage: ``.venv/bin/python benchmarks/profile_inprocess.py [--runs 15] [--no-write]``
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _bench import (
    ROOT,
    clean_env,
    machine_info,
    median,
    start_endpoint,
    update_results,
    wait_for_drainers,
)

EXAMPLE = ROOT / "examples" / "deploy" / "deployctl.py"

DRIVER = r'''
import sys, time
t0 = time.perf_counter_ns()
import click
t1 = time.perf_counter_ns()
sys.stderr.write("@@phase import\n")
import otel_cli_telemetry
t2 = time.perf_counter_ns()
sys.stderr.write("@@phase driver\n")
import json, runpy
from otel_cli_telemetry.capture import session

mode, out, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
profiler = None
if mode == "profile":
    import cProfile
    profiler = cProfile.Profile()
times = {"click_ms": (t1 - t0) / 1e6, "import_ms": (t2 - t1) / 1e6}
real_init, real_finish = otel_cli_telemetry.init, session.finish

def timed_init(*args, **kwargs):
    sys.stderr.write("@@phase init\n")
    if profiler:
        profiler.enable()
    started = time.perf_counter_ns()
    real_init(*args, **kwargs)
    times["init_ms"] = (time.perf_counter_ns() - started) / 1e6
    if profiler:
        profiler.disable()
        profiler.dump_stats(out + ".init")
        profiler.clear()

def timed_finish(*args, **kwargs):
    started = time.perf_counter_ns()
    real_finish(*args, **kwargs)
    times["finish_ms"] = (time.perf_counter_ns() - started) / 1e6

otel_cli_telemetry.init = timed_init
session.finish = timed_finish
app = runpy.run_path(EXAMPLE, run_name="deployctl")
sys.stderr.write("@@phase command\n")
if profiler:
    profiler.enable()
started = time.perf_counter_ns()
app["cli"].main(argv, prog_name="deployctl", standalone_mode=False)
times["command_ms"] = (time.perf_counter_ns() - started) / 1e6
if profiler:
    profiler.disable()
    profiler.dump_stats(out + ".command")
sys.stderr.write("@@phase end\n")
with open(out, "w") as handle:
    json.dump(times, handle)
'''


def driver_env(base: dict[str, str], state_home: Path, endpoint: str | None) -> dict[str, str]:
    env = {**base, "XDG_STATE_HOME": str(state_home), "DEPLOYCTL_TELEMETRY": "1"}
    if endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    return env


def run_driver(env: dict[str, str], mode: str, out: Path, argv: list[str],
               importtime: bool = False) -> tuple[dict[str, float], str]:
    code = f"EXAMPLE = {str(EXAMPLE)!r}\n" + DRIVER
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", code, mode,
           str(out), *argv]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                            timeout=60, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise SystemExit(f"driver failed: {result.stderr[-3000:]}")
    return json.loads(out.read_text()), result.stderr


def parse_importtime(stderr: str) -> dict[str, dict[str, tuple[int, int]]]:
    """phase -> module -> (self us, cumulative us); only lines between our phase markers."""
    phases: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    phase = None
    for line in stderr.splitlines():
        if line.startswith("@@phase "):
            phase = line.split()[1]
            continue
        if phase is None or phase == "end" or not line.startswith("import time:"):
            continue
        parts = line[len("import time:"):].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip())) // 2
        phases[phase][name.strip()] = (int(parts[0]), int(parts[1]) if depth == 0 else 0)
    return phases


def external_imports(stderr: str) -> set[str]:
    """Modules outside the SDK that an SDK module imports directly, in the import/init
    phases (``-X importtime`` lists children before their parent, indented one more)."""
    found: set[str] = set()
    parents: dict[int, str] = {}
    for line in reversed(stderr.splitlines()):  # a parent before its children
        if not line.startswith("import time:"):
            continue
        raw = line.split("|")[-1].rstrip()
        name = raw.strip()
        depth = (len(raw) - len(raw.lstrip()) - 1) // 2
        parents[depth] = name
        parent = parents.get(depth - 1, "") if depth > 0 else ""
        if parent.startswith("otel_cli_telemetry") and not name.startswith("otel_cli_telemetry"):
            found.add(name)
    return found


def segment(stderr: str, start: str, end: str) -> str:
    """The importtime lines between two phase markers."""
    return stderr.split(f"@@phase {start}\n", 1)[-1].split(f"@@phase {end}\n", 1)[0]


def real_import_ms(env: dict[str, str], module: str, runs: int) -> float:
    """Median wall time of ``import module`` right after ``import click``, fresh processes."""
    code = ("import click, sys, time\nt = time.perf_counter_ns()\n"
            f"import {module}\nprint((time.perf_counter_ns() - t) / 1e6)")
    values = []
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, check=False, timeout=30)
        if result.returncode == 0:
            values.append(float(result.stdout.strip() or "nan"))
    return median(values)


def overhead_values(state_home: Path) -> list[float]:
    path = state_home / "deployctl" / "otel-cli-telemetry" / "records.jsonl"
    values = []
    try:
        for line in path.read_bytes().splitlines():
            values.append(float(json.loads(line)["attributes"]["cli_telemetry.sdk.overhead_ms"]))
    except (OSError, ValueError, KeyError):
        pass
    return values


_MACHINERY = frozenset({"<built-in method builtins.__import__>", "<built-in method builtins.exec>"})


def merged_stats(paths: list[Path]) -> pstats.Stats:
    stats = pstats.Stats(str(paths[0]))
    for path in paths[1:]:
        stats.add(str(path))
    return stats


def top_stats(stats: pstats.Stats, runs: int, limit: int, sort: str) -> list[str]:
    """Top functions of merged cProfile dumps, per run: cumulative/self ms, calls, where."""
    rows = []
    table = stats.stats  # type: ignore[attr-defined]
    for (filename, line, func), (_, nc, tt, ct, _) in table.items():
        if filename.startswith("<frozen importlib") or func in _MACHINERY:
            continue  # the import machinery: the module bodies (<module>) say more
        where = filename
        for marker in ("site-packages/", "/src/", "/lib/python3"):
            if marker in where:
                where = where.split(marker, 1)[1]
                break
        rows.append((ct if sort == "cumulative" else tt, ct, tt, nc, f"{where}:{line}({func})"))
    rows.sort(reverse=True)
    return [f"| {ct * 1000 / runs:.2f} | {tt * 1000 / runs:.2f} | {nc / runs:g} | `{name}` |"
            for _, ct, tt, nc, name in rows[:limit]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="fresh processes per scenario")
    parser.add_argument("--profiles", type=int, default=5, help="cProfile runs (merged)")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--endpoint", choices=("auto", "collector", "python"), default="auto")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    base = clean_env()
    base["OTEL_CLI_TELEMETRY_DRAINER_LINGER"] = "0"
    work = Path(tempfile.mkdtemp(prefix="otel-cli-telemetry-profile-"))
    up = start_endpoint("up", work, args.endpoint)
    argv = ["stage", "list"]
    # scenario -> (DEPLOYCTL_TELEMETRY, endpoint); each keeps one state dir (steady state:
    # the first run, which creates the directories and the installation id, is a warm-up).
    scenarios = {
        "disabled (DEPLOYCTL_TELEMETRY=0)": ("0", up.url),
        "local only (no endpoint)": ("1", None),
        "endpoint up (spool + drainer spawn)": ("1", up.url),
    }
    homes = {name: work / f"s{i}" for i, name in enumerate(scenarios)}

    def env_of(name: str) -> dict[str, str]:
        switch, endpoint = scenarios[name]
        env = {**base, "XDG_STATE_HOME": str(homes[name]), "DEPLOYCTL_TELEMETRY": switch}
        if endpoint:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        return env

    def settle(name: str) -> None:
        wait_for_drainers(str(homes[name] / "deployctl" / "otel-cli-telemetry"))

    rows: dict[str, dict[str, list[float]]] = {n: defaultdict(list) for n in scenarios}
    importtimes: dict[str, dict[str, dict[str, list[tuple[int, int]]]]] = {
        n: defaultdict(lambda: defaultdict(list)) for n in scenarios}
    profiles: dict[str, list[Path]] = defaultdict(list)
    externals: set[str] = set()
    try:
        for name in scenarios:  # warm-up: bytecode, directories, installation id
            run_driver(env_of(name), "time", work / "warm.json", argv)
            settle(name)
        for i in range(args.runs):
            for name in scenarios:
                times, _ = run_driver(env_of(name), "time", work / "t.json", argv)
                for key, value in times.items():
                    rows[name][key].append(value)
                settle(name)
                _, stderr = run_driver(env_of(name), "time", work / "it.json", argv,
                                       importtime=True)
                settle(name)
                if name != "endpoint up (spool + drainer spawn)":
                    externals.update(external_imports(segment(stderr, "import", "driver")))
                    externals.update(external_imports(segment(stderr, "init", "command")))
                for phase, found in parse_importtime(stderr).items():
                    for module, cost in found.items():
                        importtimes[name][phase][module].append(cost)
                if i < args.profiles and name != next(iter(scenarios)):
                    out = work / f"p{len(profiles[name])}-{len(name)}.json"
                    run_driver(env_of(name), "profile", out, argv)
                    profiles[name].append(out)
                    settle(name)
        overheads = {name: overhead_values(homes[name]) for name in scenarios}
    finally:
        up.close()

    info = machine_info()
    lines = [
        "## In-process costs (`benchmarks/profile_inprocess.py`)",
        "",
        f"- Date: {info['date']}; tree {info['tree']}; load average (1/5/15 min) "
        f"{info['load']}; {args.runs} fresh processes per scenario "
        "(interleaved), `deployctl stage list` driven in-process (`standalone_mode=False`) "
        "after `import click`, bytecode cached, each scenario in its own state dir after one "
        f"warm-up run (steady state, not a first run). Endpoint: {up.description}.",
        f"- Reproduce: `.venv/bin/python benchmarks/profile_inprocess.py --runs {args.runs}`",
        "",
        "### Wall time per phase, no profiler (median ms)",
        "",
        "| scenario | `import otel_cli_telemetry` | `init()` | end of command "
        "(`session.finish`) | `cli.main` incl. click and the end | SDK's `overhead_ms` |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in scenarios:
        r = rows[name]
        finish = f"{median(r['finish_ms']):.2f}" if r.get("finish_ms") else "-"
        overhead = f"{median(overheads[name]):.2f}" if overheads[name] else "-"
        lines.append(f"| {name} | {median(r['import_ms']):.2f} | {median(r['init_ms']):.2f} | "
                     f"{finish} | {median(r['command_ms']):.2f} | {overhead} |")
    lines += ["", "### `-X importtime` after `import click` (median, ms; importtime itself "
              "inflates these)", ""]
    for name in scenarios:
        for phase, title in (("import", "`import otel_cli_telemetry`"), ("init", "`init()`"),
                             ("command", "the command and its end")):
            modules = importtimes[name].get(phase, {})
            if not modules:
                continue
            total = sum(median(v[1] for v in values) for values in modules.values())
            ranked = sorted(modules.items(), key=lambda kv: -median(v[0] for v in kv[1]))
            lines.append(
                f"- {name}, **{title}**: {len(modules)} modules, {total / 1000:.2f} ms. "
                "Largest self: " + ", ".join(
                    f"`{module}` {median(v[0] for v in values) / 1000:.2f}"
                    for module, values in ranked[:args.top]) + ".")
    real = sorted(((real_import_ms(base, m, args.runs), m) for m in externals), reverse=True)
    lines += ["", "Modules outside the SDK that SDK modules import directly (import + init), "
              "each timed alone right after `import click`, no importtime (median ms of "
              f"{args.runs} fresh processes; one shared dependency is paid once): "
              + ", ".join(f"`{m}` {ms:.2f}" for ms, m in real) + ".", ""]
    for name, dumps in profiles.items():
        for suffix, title in ((".init", "`init()`"), (".command", "`cli.main` (the command)")):
            stats = merged_stats([Path(str(d) + suffix) for d in dumps])
            lines += [f"### cProfile, {name}: {title} (per run, mean of {len(dumps)})", "",
                      "| cumulative ms | self ms | calls | function |", "|---:|---:|---:|---|"]
            lines += top_stats(stats, len(dumps), args.top, "cumulative")
            lines += ["", "By self time:", "",
                      "| cumulative ms | self ms | calls | function |", "|---:|---:|---:|---|"]
            lines += top_stats(stats, len(dumps), args.top, "self")
            lines.append("")
    shutil.rmtree(work, ignore_errors=True)
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        update_results("inprocess", report)
    return 0


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    started = time.monotonic()
    code = main()
    print(f"took {time.monotonic() - started:.0f} s", file=sys.stderr)
    raise SystemExit(code)
