"""Drainer throughput: spooled records delivered per second to the real collector.

1. Real records: the example CLI runs a mix of commands (deploy, failures, stage commands)
   with telemetry on and no endpoint; its local history holds the records exactly as the
   spool does. They are cloned to ``--records`` spool files with fresh trace/span ids,
   pids and times (1 ms apart, ending now).
2. The drainer runs as the CLI starts it (``python -m otel_cli_telemetry.delivery.drainer
   --app deployctl --state-dir DIR``, OTEL_EXPORTER_OTLP_ENDPOINT set), timed from spawn to
   exit, with its peak RSS (under GNU time). The spool caps a CLI's backlog at
   ``spool.MAX_RECORDS`` (1,000), so the records are drained in rounds of at most that many,
   each by a fresh drainer ("as shipped"); then once more by ONE drainer over all of them
   with the caps lifted in a harness-only wrapper (steady state).
3. Checks: spool empty after each drainer, every delivery-log outcome ``ok``, the endpoint
   accepted exactly the expected number of spans; and three drainers started at once on
   one spool deliver each span once (one drainer at most).

Usage: ``.venv/bin/python benchmarks/drain_throughput.py [--records 5000]
[--endpoint auto|collector|python] [--no-write]``
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _bench import (
    ROOT,
    Endpoint,
    Run,
    clean_env,
    machine_info,
    median,
    run_timed,
    start_endpoint,
    update_results,
)

EXAMPLE = ROOT / "examples" / "deploy" / "deployctl.py"
BUDGET_RECORDS_PER_S = 10000.0
SPOOL_CAP = 1000  # otel_cli_telemetry.handoff.spool.MAX_RECORDS (checked below)
#: A realistic mix: mostly quick commands, some deploys, a few failures.
MIX = (
    ["stage", "list"], ["deploy"], ["stage", "new", "qa"], ["deploy", "--stage", "prod"],
    ["stage", "list"], ["deploy", "--fail", "quota"], ["exit", "3"], ["deploy", "--fail", "usage"],
)
UNCAPPED = (
    "import sys\n"
    "from otel_cli_telemetry.handoff import spool\n"
    "spool.MAX_RECORDS = spool.MAX_BYTES = 10**12\n"
    "from otel_cli_telemetry.delivery.drainer import main\n"
    "raise SystemExit(main(sys.argv[1:]))\n"
)


def real_records(env: dict[str, str], work: Path) -> list[dict[str, Any]]:
    """Records produced by the real CLI (local history = spool format)."""
    home = work / "seed"
    run_env = {**env, "XDG_STATE_HOME": str(home), "DEPLOYCTL_TELEMETRY": "1"}
    for argv in MIX:
        subprocess.run([sys.executable, str(EXAMPLE), *argv], env=run_env, check=False,
                       capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    history = home / "deployctl" / "otel-cli-telemetry" / "records.jsonl"
    records = [json.loads(line) for line in history.read_bytes().splitlines()]
    if len(records) < len(MIX) // 2:
        raise SystemExit(f"only {len(records)} records from {len(MIX)} commands")
    return records


def clone(template: dict[str, Any], end_ns: int, pid: int) -> dict[str, Any]:
    """The template with new ids, pid and times (same durations and phase layout)."""
    record = copy.deepcopy(template)
    shift = end_ns - int(record["end_ns"])
    ids = {record["span_id"]: os.urandom(8).hex()}
    for phase in record.get("phases", []):
        ids[phase["span_id"]] = os.urandom(8).hex()
    record["trace_id"] = os.urandom(16).hex()
    record["span_id"] = ids[record["span_id"]]
    record["start_ns"] = int(record["start_ns"]) + shift
    record["end_ns"] = end_ns
    record["attributes"]["process.pid"] = pid
    for phase in record.get("phases", []):
        phase["span_id"] = ids[phase["span_id"]]
        phase["parent_span_id"] = ids.get(phase["parent_span_id"], record["span_id"])
        phase["start_ns"] = int(phase["start_ns"]) + shift
        if phase.get("end_ns") is not None:
            phase["end_ns"] = int(phase["end_ns"]) + shift
    return record


def fill_spool(state_dir: Path, templates: list[dict[str, Any]], n: int) -> int:
    """Write ``n`` spool files; returns the number of spans they hold."""
    spool = state_dir / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    now = time.time_ns()
    spans = 0
    for i in range(n):
        end_ns = now - (n - i) * 1_000_000
        record = clone(templates[i % len(templates)], end_ns, 10_000 + i)
        spans += 1 + len(record.get("phases", []))
        line = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
        (spool / f"{end_ns:020d}-{10_000 + i}-{os.urandom(3).hex()}.json").write_bytes(line)
    return spans


def spool_left(state_dir: Path) -> int:
    try:
        return sum(1 for p in (state_dir / "spool").iterdir() if not p.name.startswith("."))
    except OSError:
        return 0


def outcomes(state_dir: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        lines = (state_dir / "delivery.jsonl").read_bytes().splitlines()
    except OSError:
        return found
    for line in lines:
        entry = json.loads(line)
        if entry.get("outcome") == "exit":  # the drainer's own cost account, not a delivery
            found["cpu_ms"] = found.get("cpu_ms", 0) + float(entry.get("cpu_ms") or 0)
            continue
        key = f"{entry.get('signal')}:{entry.get('outcome')}"
        found[key] = found.get(key, 0) + 1
    return found


def drainer_argv(state_dir: Path, uncapped: bool = False) -> list[str]:
    head = [sys.executable, "-c", UNCAPPED] if uncapped else [
        sys.executable, "-m", "otel_cli_telemetry.delivery.drainer"]
    return [*head, "--app", "deployctl", "--state-dir", str(state_dir)]


def accepted_after(endpoint: Endpoint, expected: int, timeout: float = 10.0) -> int | None:
    """The endpoint's accepted-span count once it reaches ``expected`` (or the timeout)."""
    deadline = time.monotonic() + timeout
    value = endpoint.accepted_spans()
    while value is not None and value < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        value = endpoint.accepted_spans()
    return value


def profile_table(dump: Path, records: int, top: int = 14) -> list[str]:
    """Where one drainer's time goes (cProfile, whole process), grouped by function."""
    import pstats

    stats = pstats.Stats(str(dump))
    table = stats.stats  # type: ignore[attr-defined]
    total = max(ct for (_, _, _), (_, _, _, ct, _) in table.items())
    rows = []
    for (filename, line, func), (_, nc, tt, ct, _) in table.items():
        if filename.startswith("<frozen importlib") or func.startswith("<built-in method builtins"):
            continue
        where = filename.split("site-packages/", 1)[-1].split("/main/", 1)[-1]
        rows.append((tt, ct, nc, f"{where.rsplit('/lib/', 1)[-1]}:{line}({func})"))
    rows.sort(reverse=True)
    lines = ["", f"Where a drainer's time goes (cProfile of one uncapped drain of {records:,} "
             f"records, {total:.2f} s under the profiler; top {top} by self time):", "",
             "| self s | cumulative s | calls | function |", "|---:|---:|---:|---|"]
    lines += [f"| {tt:.3f} | {ct:.3f} | {nc:,} | `{name}` |" for tt, ct, nc, name in rows[:top]]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--endpoint", choices=("auto", "collector", "python"), default="auto")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    args = parser.parse_args()
    from otel_cli_telemetry.handoff import spool as sdk_spool

    if sdk_spool.MAX_RECORDS != SPOOL_CAP:
        print(f"note: spool cap is now {sdk_spool.MAX_RECORDS}", file=sys.stderr)
    cap = int(sdk_spool.MAX_RECORDS)
    work = Path(tempfile.mkdtemp(prefix="otel-cli-telemetry-drain-"))
    env = clean_env()
    env["OTEL_CLI_TELEMETRY_DRAINER_LINGER"] = "0"  # timed from spawn to exit: no idle tail
    templates = real_records(env, work)
    endpoint = start_endpoint("up", work, args.endpoint)
    run_env = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint.url}
    print(f"endpoint: {endpoint.description} at {endpoint.url}; {len(templates)} templates",
          file=sys.stderr)
    scratch = work / "scratch"
    scratch.mkdir()
    problems: list[str] = []
    try:
        # The fixed cost of one drainer: a spool of ONE record (interpreter, imports of the
        # OpenTelemetry SDK and protobuf, lock, breaker, one traces + one metrics request).
        startups = []
        for i in range(4):
            one = work / f"one-{i}"
            fill_spool(one, templates, 1)
            startups.append(run_timed(drainer_argv(one), run_env, scratch, rss=True))
        startup_ms = median(r.wall_ms for r in startups[1:])

        def drain_rounds(name: str, per_drainer: int, uncapped: bool) -> dict[str, Any]:
            state_dir = work / name
            left, runs, spans_total = args.records, [], 0
            before = endpoint.accepted_spans() or 0
            while left > 0:
                n = min(per_drainer, left)
                spans_total += fill_spool(state_dir, templates, n)
                run = run_timed(drainer_argv(state_dir, uncapped), run_env, scratch, rss=True)
                runs.append(run)
                if run.exit_code != 0 or spool_left(state_dir):
                    problems.append(f"{name}: drainer exit {run.exit_code}, "
                                    f"{spool_left(state_dir)} records left")
                    break
                left -= n
            accepted = accepted_after(endpoint, before + spans_total)
            result = outcomes(state_dir)
            cpu_ms = float(result.pop("cpu_ms", 0))
            if any(not key.endswith(":ok") for key in result):
                problems.append(f"{name}: delivery outcomes {result}")
            delta = None if accepted is None else accepted - before
            if delta is not None and delta != spans_total:
                problems.append(f"{name}: endpoint accepted {delta} spans, sent {spans_total}")
            return {"runs": runs, "spans": spans_total, "accepted": delta,
                    "records": args.records - left, "outcomes": result, "cpu_ms": cpu_ms}

        capped = drain_rounds("capped", cap, uncapped=False)
        single = drain_rounds("single", args.records, uncapped=True)

        profile_lines: list[str] = []
        if not args.no_profile:  # where a drainer's time goes: cProfile of the uncapped run
            prof_dir = work / "profile"
            fill_spool(prof_dir, templates, args.records)
            wrapper = work / "drainer_uncapped.py"
            wrapper.write_text(UNCAPPED)
            dump = work / "drainer.prof"
            run_timed([sys.executable, "-m", "cProfile", "-o", str(dump), str(wrapper),
                       *drainer_argv(prof_dir)[3:]], run_env, scratch)
            if dump.exists() and not spool_left(prof_dir):
                profile_lines = profile_table(dump, args.records)
            else:
                problems.append("profiled drain did not finish")

        # One drainer at most: three at once on one spool; every span must arrive once.
        race_dir = work / "race"
        race_spans = fill_spool(race_dir, templates, min(cap, args.records))
        before = endpoint.accepted_spans() or 0
        pids = [os.posix_spawn(sys.executable, drainer_argv(race_dir), run_env)
                for _ in range(3)]
        for pid in pids:
            os.waitpid(pid, 0)
        race_accepted = accepted_after(endpoint, before + race_spans)
        race_delta = None if race_accepted is None else race_accepted - before
        race_ok = spool_left(race_dir) == 0 and race_delta in (None, race_spans)
        if not race_ok:
            problems.append(f"race: {spool_left(race_dir)} left, {race_delta} of {race_spans}")
    finally:
        endpoint.close()
        shutil.rmtree(work, ignore_errors=True)

    def row(label: str, result: dict[str, Any]) -> tuple[str, float]:
        runs: list[Run] = result["runs"]
        wall_s = sum(r.wall_ms for r in runs) / 1000
        rate = result["records"] / wall_s
        steady = (result["records"] - len(runs)) / max(
            1e-9, wall_s - len(runs) * startup_ms / 1000)
        peak = max((r.rss_kib or 0) for r in runs) / 1024
        accepted = "n/a" if result["accepted"] is None else f"{result['accepted']:,}"
        cpu_s = result["cpu_ms"] / 1000
        per_cpu = f"{result['records'] / cpu_s:,.0f}" if cpu_s else "n/a"
        return (f"| {label} | {result['records']:,} | {len(runs)} | {wall_s:.2f} | "
                f"**{rate:,.0f}** | {steady:,.0f} | {per_cpu} | "
                f"{result['spans'] / wall_s:,.0f} | "
                f"{peak:.1f} | {accepted} / {result['spans']:,} |", rate)

    info = machine_info()
    capped_row, capped_rate = row(f"as shipped: one drainer per {cap:,} (spool cap)", capped)
    single_row, single_rate = row("one drainer, caps lifted (harness wrapper)", single)
    lines = [
        "## Drainer throughput (`benchmarks/drain_throughput.py`)",
        "",
        f"- Date: {info['date']}; machine: {info['machine']}; load average (1/5/15 min) "
        f"{info['load']}; tree {info['tree']}; {info['python']}; {info['packages']}.",
        f"- Endpoint: {endpoint.description}.",
        f"- {args.records:,} records cloned from {len(templates)} real records of the example "
        f"CLI ({', '.join(' '.join(m) for m in MIX)}); OTLP/HTTP protobuf, batches of 256.",
        f"- Reproduce: `.venv/bin/python benchmarks/drain_throughput.py --records "
        f"{args.records}`",
        "",
        "| run | records | drainers | wall s | records/s | records/s excl. fixed cost "
        "| records per drainer CPU-second (its own log) | spans/s | drainer peak RSS MiB "
        "| spans accepted / sent |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        capped_row,
        single_row,
        "",
        f"- Fixed cost of one drainer (a spool of one record: interpreter, imports, lock, "
        f"one traces and one metrics request, exit): {startup_ms:.0f} ms median, peak RSS "
        f"{max((r.rss_kib or 0) for r in startups) / 1024:.1f} MiB.",
        f"- Three drainers started at once on one spool of {min(cap, args.records):,} records: "
        f"{'each span delivered once' if race_ok else 'FAILED'} "
        f"({race_delta if race_delta is not None else 'n/a'} of {race_spans} spans accepted).",
        f"- Budget >= {BUDGET_RECORDS_PER_S:,.0f} records/s: as shipped "
        f"{'met' if capped_rate >= BUDGET_RECORDS_PER_S else 'NOT MET'} "
        f"({capped_rate:,.0f}/s); one drainer "
        f"{'met' if single_rate >= BUDGET_RECORDS_PER_S else 'NOT MET'} ({single_rate:,.0f}/s).",
    ]
    lines += profile_lines
    if problems:
        lines += ["", "Problems: " + "; ".join(problems)]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        update_results("drain", report)
    return 1 if problems else 0


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    raise SystemExit(main())
