"""What telemetry adds to a command: our SDK vs no telemetry vs the naive OpenTelemetry setup.

Runs real processes of the example CLI (``examples/deploy/deployctl.py``) in three copies
generated from the same source, differing only in the telemetry import:

- ``bare``: no telemetry at all (the SDK import replaced by no-op stubs; same app code);
- ``ours``: the example unchanged (``otel_cli_telemetry.init(...)`` at import);
- ``naive``: ``TracerProvider`` + ``BatchSpanProcessor`` + ``OTLPSpanExporter`` (HTTP) +
  ``opentelemetry-instrumentation-click``, set up the usual way (atexit shutdown); phases are
  child spans, ``set_attributes`` goes to the current span, metrics are not exported.

Every state gets its own fresh state dir (``XDG_STATE_HOME``); all runs are interleaved in
shuffled rounds, so machine noise hits every state alike. Each run is timed by the harness
(``posix_spawn`` .. ``wait4``: wall, CPU and peak RSS of the CLI process alone); drainers it
leaves behind are detected in /proc and waited for before the next run (no pile-up).

Usage (from the repo root)::

    .venv/bin/python benchmarks/overhead.py --runs 30 [--endpoint auto|collector|python]
        [--hyperfine] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _bench import (
    ROOT,
    Endpoint,
    Run,
    clean_env,
    drainer_pids,
    machine_info,
    median,
    p95,
    run_timed,
    start_endpoint,
    update_results,
    wait_for_drainers,
)

EXAMPLE = ROOT / "examples" / "deploy" / "deployctl.py"
COMMANDS: dict[str, list[str]] = {"stage list": ["stage", "list"], "deploy": ["deploy"]}
IMPORT_SDK = "import otel_cli_telemetry as telemetry\n"
IMPORT_SPEC = "from otel_cli_telemetry.schema import MetricSpec\n"

NONE_STUB = '''"""No telemetry: the calls deployctl makes, as no-ops (the baseline)."""
from typing import Any


class MetricSpec:
    def __init__(self, *args: Any) -> None:
        self.args = args


class _Instrument:
    def add(self, *args: Any, **kwargs: Any) -> None:
        pass

    def record(self, *args: Any, **kwargs: Any) -> None:
        pass


def init(*args: Any, **kwargs: Any) -> None:
    pass


def counter(*args: Any, **kwargs: Any) -> _Instrument:
    return _Instrument()


histogram = counter


class phase:
    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> "phase":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def set_attributes(attributes: Any) -> None:
    pass


def _field(description: str, *args: Any, **kwargs: Any) -> str:
    return description


Bool = Duration = Enum = Identifier = Integer = Number = Text = Version = _field
'''

NAIVE_STUB = '''"""The naive setup: OTel SDK + click instrumentation, configured as usual."""
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.click import ClickInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from _bench_none import (  # metrics and field kinds: not exported (no-ops)
    Bool,
    Enum,
    Integer,
    MetricSpec,
    counter,
    histogram,
)

__all__ = ["Bool", "Enum", "Integer", "MetricSpec", "counter", "histogram", "init", "phase",
           "set_attributes"]

_provider = TracerProvider(
    resource=Resource.create({"service.name": "deployctl", "service.version": "1.4.2"})
)
_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(_provider)
ClickInstrumentor().instrument()
_tracer = trace.get_tracer("deployctl")


def init(*args: Any, **kwargs: Any) -> None:
    pass


def phase(name: str) -> Any:
    return _tracer.start_as_current_span(name)


def set_attributes(attributes: Any) -> None:
    trace.get_current_span().set_attributes(dict(attributes))
'''


def generate_copies(workdir: Path) -> dict[str, Path]:
    """bare/ours/naive copies of the example CLI, side by side with their stub modules."""
    source = EXAMPLE.read_text()
    if source.count(IMPORT_SDK) != 1 or source.count(IMPORT_SPEC) != 1:
        raise SystemExit(f"{EXAMPLE} no longer imports the SDK as this harness expects")
    copies = {}
    for variant, module in (("bare", "_bench_none"), ("naive", "_bench_naive")):
        text = source.replace(IMPORT_SDK, f"import {module} as telemetry\n").replace(
            IMPORT_SPEC, f"from {module} import MetricSpec\n"
        )
        if re.search(r"^\s*(import|from)\s+otel_cli_telemetry", text, re.M):
            raise SystemExit(f"the {variant} copy still imports otel_cli_telemetry")
        copies[variant] = workdir / f"deployctl_{variant}.py"
        copies[variant].write_text(text)
    copies["ours"] = workdir / "deployctl_ours.py"
    copies["ours"].write_text(source)
    (workdir / "_bench_none.py").write_text(NONE_STUB)
    (workdir / "_bench_naive.py").write_text(NAIVE_STUB)
    _check_copies(workdir, copies)
    return copies


def _check_copies(workdir: Path, copies: dict[str, Path]) -> None:
    """Every copy must run the command to its end and print what ours prints.

    A stub that lacks a name the example uses makes its copy fail at import, before click
    runs: a baseline that does less work than the real CLI, and every figure measured
    against it too high. Checked on each run of every benchmark that uses the copies.
    """
    env = {**os.environ, "XDG_STATE_HOME": str(workdir / "state-check"),
           "DEPLOYCTL_TELEMETRY": "0", "OTEL_SDK_DISABLED": "true"}
    outputs = {}
    for variant, script in copies.items():
        result = subprocess.run([sys.executable, str(script), "stage", "list"], env=env,
                                capture_output=True, text=True, check=False, timeout=120)
        if result.returncode != 0 or result.stderr:
            raise SystemExit(f"the {variant} copy of the example failed (exit "
                             f"{result.returncode}):\n{result.stderr[-2000:]}")
        outputs[variant] = result.stdout
    if len(set(outputs.values())) != 1:
        raise SystemExit(f"the copies of the example print different things: {outputs}")


@dataclass
class State:
    """One configuration measured: which copy, which endpoint, which env."""

    key: str
    label: str
    variant: str  # bare | ours | naive
    endpoint: str | None = None  # up | refused | silent
    env: dict[str, str] = field(default_factory=dict)
    budget_ms: float | None = None
    slow: bool = False  # seconds per run: only a few rounds, only "stage list"
    runs: dict[str, list[Run]] = field(default_factory=dict)
    rss_runs: dict[str, list[Run]] = field(default_factory=dict)  # under GNU time: RSS only
    drainers: dict[str, set[int]] = field(default_factory=dict)
    stuck: int = 0


def make_states() -> list[State]:
    on = {"DEPLOYCTL_TELEMETRY": "1"}
    return [
        State("a", "(a) no telemetry (baseline)", "bare"),
        State("b", "(b) ours, endpoint up", "ours", "up", on, 5.0),
        State("c", "(c) ours, endpoint refused", "ours", "refused", on, 5.0),
        State("d", "(d) ours, endpoint silent", "ours", "silent", on, 5.0),
        State("e", "(e) ours, disabled (DEPLOYCTL_TELEMETRY=0)", "ours", "up",
              {"DEPLOYCTL_TELEMETRY": "0"}, 1.0),
        State("f", "(f) ours, no endpoint (local only)", "ours", None, on, 5.0),
        State("g", "(g) ours, CI (CI=true), endpoint up", "ours", "up", {"CI": "true"}, 30.0),
        State("h", "(h) ours, CI (CI=true), endpoint refused", "ours", "refused",
              {"CI": "true"}, 2000.0),
        State("nb", "naive, endpoint up", "naive", "up"),
        State("nc", "naive, endpoint refused", "naive", "refused", slow=True),
        State("nd", "naive, endpoint silent", "naive", "silent", slow=True),
        State("ne", "naive, disabled (OTEL_SDK_DISABLED=true)", "naive", "up",
              {"OTEL_SDK_DISABLED": "true"}),
    ]


def sdk_state_dir(xdg: Path) -> Path:
    return xdg / "deployctl" / "otel-cli-telemetry"


def bootstrap_ci(a: list[float], b: list[float], rng: random.Random,
                 n: int = 1000) -> tuple[float, float]:
    """95 % interval of median(b) - median(a) by resampling both groups."""
    if len(a) < 5 or len(b) < 5:
        return float("nan"), float("nan")
    diffs = sorted(
        median(rng.choices(b, k=len(b))) - median(rng.choices(a, k=len(a))) for _ in range(n)
    )
    return diffs[int(0.025 * n)], diffs[int(0.975 * n) - 1]


def overhead_ms_values(xdg: Path) -> list[float]:
    """``cli_telemetry.sdk.overhead_ms`` of every record in the state dir's local history."""
    values = []
    try:
        lines = (sdk_state_dir(xdg) / "records.jsonl").read_bytes().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            values.append(float(json.loads(line)["attributes"]["cli_telemetry.sdk.overhead_ms"]))
        except (ValueError, KeyError, TypeError):
            continue
    return values


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def build_report(states: list[State], xdgs: dict[tuple[str, str], Path],
                 endpoints: dict[str, Endpoint], args: argparse.Namespace,
                 info: dict[str, str], elapsed_s: float) -> tuple[str, list[str]]:
    """The Markdown section and the list of budget verdicts."""
    rng = random.Random(7)
    lines = [
        "## Per-command overhead (`benchmarks/overhead.py`)",
        "",
        f"- Date: {info['date']}; machine: {info['machine']}; load average (1/5/15 min) "
        f"{info['load']} (a shared, noisy machine: compare within a table, not across runs); "
        f"tree {info['tree']}.",
        f"- {info['python']}; {info['packages']}.",
        f"- Endpoint up: {endpoints['up'].description}. Refused: nothing listens. "
        "Silent: accepts, never answers.",
        f"- {args.runs} timed interleaved rounds after {args.rss_runs} rounds under GNU time "
        f"for peak RSS (naive refused/silent: {args.slow_runs} rounds, `stage list` only, "
        f"timed and RSS together); every state its own fresh state dir; took "
        f"{elapsed_s:.0f} s.",
        f"- Reproduce: `{' '.join(['.venv/bin/python', 'benchmarks/overhead.py', *sys.argv[1:]])}`",
        "",
        "Columns: wall time of the CLI process (spawn to exit, ms); *added* = median - baseline "
        "median, with a bootstrap 95 % interval; *CPU* = user+sys ms added (less sensitive to "
        "scheduling noise); output bytes added to stdout/stderr vs the baseline; peak RSS of "
        "the CLI process; drainers the runs left behind; `overhead_ms` = what the SDK "
        "measured itself (median of `cli_telemetry.sdk.overhead_ms` in the local history). "
        "Budget verdicts: *met* / *NOT MET* when the whole 95 % interval agrees, else the "
        "median's verdict marked *CI crosses* (the machine's noise decides).",
        "",
    ]
    verdicts: list[str] = []
    for command in COMMANDS:
        base = states[0].runs.get(command, [])
        base_wall = [r.wall_ms for r in base]
        base_cpu = [r.cpu_ms for r in base]
        ref_out, ref_err = (base[0].stdout, base[0].stderr) if base else (b"", b"")
        lines += [
            f"### `deployctl {command}`",
            "",
            "| state | median ms | added ms (95 % CI) | p95 ms | ratio | CPU added ms "
            "| out/err bytes added | peak RSS MiB | drainers spawned | overhead_ms | budget |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
        ]
        for state in states:
            runs = state.runs.get(command)
            if not runs:
                continue
            wall = [r.wall_ms for r in runs]
            added = median(wall) - median(base_wall)
            low, high = bootstrap_ci(base_wall, wall, rng)
            cpu_added = median(r.cpu_ms for r in runs) - median(base_cpu)
            out_added = max(len(r.stdout) - len(ref_out) for r in runs)
            err_added = max(len(r.stderr) - len(ref_err) for r in runs)
            differs = any(r.stdout != ref_out or r.stderr != ref_err for r in runs)
            exits = {r.exit_code for r in runs}
            peaks = [r.rss_kib for r in (*runs, *state.rss_runs.get(command, []))
                     if r.rss_kib is not None]
            rss = median(peaks) / 1024 if peaks else float("nan")
            spawned = len(state.drainers.get(command, set()))
            all_runs = len(runs) + len(state.rss_runs.get(command, []))
            drainers = "-" if state.variant != "ours" else f"{spawned} in {all_runs} runs"
            xdg = xdgs.get((state.key, command))
            overhead = median(overhead_ms_values(xdg)) if xdg and state.variant == "ours" else (
                float("nan"))
            budget = "anchor" if state.variant == "naive" else ""
            if state.budget_ms is not None:
                quiet = out_added <= 0 and err_added <= 0 and not differs
                if not quiet or low > state.budget_ms:
                    verdict = "NOT MET"
                elif added <= state.budget_ms and (math.isnan(high) or high <= state.budget_ms):
                    verdict = "met"
                elif added <= state.budget_ms:
                    verdict = "met (median; CI crosses)"
                else:
                    verdict = "NOT MET (median; CI crosses)"
                budget = f"<= {state.budget_ms:g} ms, 0 B: {verdict}"
                verdicts.append(f"{command} / {state.label}: {budget} (added {added:.1f} ms, "
                                f"CI {fmt(low)}..{fmt(high)})")
            ratio = median(wall) / median(base_wall)
            note = "" if exits == {0} else f" (exit {sorted(exits)})"
            is_base = state.key == "a"
            added_text = "-" if is_base else f"{added:+.1f} ({fmt(low)}..{fmt(high)})"
            cpu_text = "-" if is_base else f"{cpu_added:+.1f}"
            lines.append(
                f"| {state.label}{note} | {median(wall):.1f} | {added_text} | "
                f"{p95(wall):.1f} | {ratio:.2f}x | {cpu_text}"
                f" | {out_added:+d} / {err_added:+d}{' (differs)' if differs else ''} | "
                f"{fmt(rss)} | {drainers} | {fmt(overhead, 2)} | {budget} |"
            )
        lines.append("")
    return "\n".join(lines), verdicts


def hyperfine_command(copies: dict[str, Path], env: dict[str, str], xdg_root: Path,
                      runs: int, export: Path) -> list[str]:
    """A hyperfine line for the local-only states (no endpoint needed) of ``stage list``."""
    keep: dict[str, str] = {k: env[k] for k in ("HOME",) if k in env}

    def cmd(variant: str, extra: dict[str, str], name: str) -> list[str]:
        values: dict[str, str] = {**keep, **extra, "XDG_STATE_HOME": str(xdg_root / name)}
        assigns = [f"{k}={v}" for k, v in values.items()]
        return ["-n", name, shlex.join(["env", "-i", *assigns, sys.executable,
                                        str(copies[variant]), "stage", "list"])]
    return [
        "hyperfine", "-N", "--warmup", "3", "--runs", str(runs), "--export-json", str(export),
        *cmd("bare", {}, "baseline"),
        *cmd("ours", {"DEPLOYCTL_TELEMETRY": "0"}, "ours-disabled"),
        *cmd("ours", {"DEPLOYCTL_TELEMETRY": "1"}, "ours-local-only"),
        *cmd("naive", {"OTEL_SDK_DISABLED": "true"}, "naive-disabled"),
    ]


def hyperfine_summary(export: Path) -> str:
    """hyperfine's own numbers for the same copies (a cross-check of this harness)."""
    try:
        results = json.loads(export.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return "\nhyperfine: no results\n"
    base = results[0]["median"]
    lines = ["", "| hyperfine (`stage list`) | mean ms ± σ | median ms | added vs baseline ms |",
             "|---|---:|---:|---:|"]
    for result in results:
        lines.append(f"| {result['command']} | {result['mean'] * 1000:.1f} ± "
                     f"{result['stddev'] * 1000:.1f} | {result['median'] * 1000:.1f} | "
                     f"{(result['median'] - base) * 1000:+.1f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="interleaved rounds (default 30)")
    parser.add_argument("--rss-runs", type=int, default=3,
                        help="extra first rounds run under GNU time for peak RSS (not timed)")
    parser.add_argument("--slow-runs", type=int, default=3,
                        help="rounds for the naive refused/silent states (seconds each)")
    parser.add_argument("--endpoint", choices=("auto", "collector", "python"), default="auto",
                        help="what serves 'endpoint up' (auto: collector if it builds)")
    parser.add_argument("--hyperfine", action="store_true",
                        help="also run hyperfine on the local-only states (if installed)")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    workdir = Path(tempfile.gettempdir()) / "otel-cli-telemetry-bench"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    copies = generate_copies(workdir)
    base_env = clean_env()
    # Each run starts its own drainer (the first command of a session, the most it costs);
    # total_cpu.py measures sessions where one lingering drainer serves many commands.
    base_env["OTEL_CLI_TELEMETRY_DRAINER_LINGER"] = "0"
    endpoints: dict[str, Endpoint] = {}
    started = time.monotonic()
    try:
        for kind in ("up", "refused", "silent"):
            endpoints[kind] = start_endpoint(kind, workdir, args.endpoint)
        print(f"endpoint up: {endpoints['up'].description} at {endpoints['up'].url}",
              file=sys.stderr)
        states = make_states()
        xdgs: dict[tuple[str, str], Path] = {}

        def env_for(state: State, command: str) -> dict[str, str]:
            env = dict(base_env)
            env.update(state.env)
            if state.endpoint is not None:
                env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoints[state.endpoint].url
            xdg = xdgs.setdefault((state.key, command),
                                  workdir / "state" / f"{state.key}-{command.replace(' ', '-')}")
            env["XDG_STATE_HOME"] = str(xdg)
            return env

        scratch = workdir / "scratch"
        scratch.mkdir()
        # Warm-up: bytecode for every module each copy (and a drainer) imports, in a
        # throw-away state dir.
        for variant in ("bare", "ours", "naive"):
            for command, argv in COMMANDS.items():
                env = {**base_env, "XDG_STATE_HOME": str(workdir / "warmup"),
                       "DEPLOYCTL_TELEMETRY": "1",
                       "OTEL_EXPORTER_OTLP_ENDPOINT": endpoints["up"].url}
                warm = subprocess.run([sys.executable, str(copies[variant]), *argv], env=env,
                                      capture_output=True, check=False, timeout=60)
                if warm.returncode != 0:
                    raise SystemExit(f"warm-up of {variant} {command} failed: {warm.stderr!r}")
                wait_for_drainers(str(sdk_state_dir(workdir / "warmup")))

        rng = random.Random(args.seed)
        total_rounds = args.rss_runs + args.runs
        for round_no in range(total_rounds):
            rss_round = round_no < args.rss_runs
            jobs = [
                (state, command)
                for state in states
                for command in COMMANDS
                if not state.slow or (round_no < args.slow_runs and command == "stage list")
            ]
            rng.shuffle(jobs)
            for state, command in jobs:
                env = env_for(state, command)
                sdk_dir = str(sdk_state_dir(xdgs[(state.key, command)]))
                run = run_timed([sys.executable, str(copies[state.variant]), *COMMANDS[command]],
                                env, scratch, rss=rss_round or state.slow)
                kept = state.rss_runs if rss_round and not state.slow else state.runs
                kept.setdefault(command, []).append(run)
                if state.variant == "ours":
                    state.drainers.setdefault(command, set()).update(drainer_pids(sdk_dir))
                    if not wait_for_drainers(sdk_dir):
                        state.stuck += 1
            print(f"round {round_no + 1}/{total_rounds} done ({time.monotonic() - started:.0f} s)",
                  file=sys.stderr)

        info = machine_info()
        report, verdicts = build_report(states, xdgs, endpoints, args, info,
                                        time.monotonic() - started)
        stuck = sum(s.stuck for s in states)
        if stuck:
            report += f"\nWARNING: {stuck} drainer(s) still alive 30 s after their run.\n"
        if shutil.which("hyperfine"):
            export = workdir / "hyperfine-overhead.json"
            line = hyperfine_command(copies, base_env, workdir / "hyperfine", args.runs, export)
            report += ("\nhyperfine cross-check of the local-only states (`--hyperfine` runs "
                       f"it):\n\n```\n{shlex.join(line)}\n```\n")
            if args.hyperfine:
                subprocess.run(line, check=False, stdout=sys.stderr)
                report += hyperfine_summary(export)
        print(report)
        print("\n".join(verdicts), file=sys.stderr)
        if not args.no_write:
            update_results("overhead", report)
            print(f"written to {ROOT / 'benchmarks' / 'RESULTS.md'}", file=sys.stderr)
    finally:
        for endpoint in endpoints.values():
            endpoint.close()
    return 0


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    raise SystemExit(main())
