"""``report``: what this machine recorded, readable at a glance.

Reads the local history (every record captured and allowed to send, delivered or not),
groups by command and prints runs, failures, p50/p95 duration and a bar per command.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..schema import lookup

BAR_WIDTH = 30


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def render(app: str, records: Iterable[dict[str, Any]]) -> str:
    """The report text for ``records`` of ``app``."""
    rows: dict[str, list[tuple[float, int]]] = defaultdict(list)
    codes: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    first = last = None
    for record in records:
        attributes = record.get("attributes", {})
        try:
            duration = max(0, int(record["end_ns"]) - int(record["start_ns"])) / 1e9
            code = int(attributes.get("process.exit.code", 0))
        except (KeyError, TypeError, ValueError):
            continue
        # History lines written before the rename carry ``cli.command``: still theirs.
        command = str(lookup(attributes, "cli_telemetry.command", record.get("name", "?")))
        rows[command].append((duration, code))
        codes[code] += 1
        if attributes.get("error.type"):
            errors[str(attributes["error.type"])] += 1
        start = int(record["start_ns"]) / 1e9
        first = start if first is None else min(first, start)
        last = start if last is None else max(last, start)
    total = sum(len(v) for v in rows.values())
    if not total or first is None or last is None:
        return f"No telemetry recorded for {app} on this machine yet."
    span = (
        f"{datetime.fromtimestamp(first):%Y-%m-%d %H:%M} to "
        f"{datetime.fromtimestamp(last):%Y-%m-%d %H:%M}"
    )
    failed_total = sum(1 for v in rows.values() for _, c in v if c != 0)
    lines = [
        f"{app}: {total} command(s) recorded on this machine, {span}",
        f"failure rate {failed_total / total:.0%}",
        "",
        f"{'command':<22}{'runs':>6}{'failed':>8}{'fail %':>8}{'p50':>10}{'p95':>10}",
    ]
    most = max(len(v) for v in rows.values())
    for command, values in sorted(rows.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        durations = sorted(d for d, _ in values)
        failed = sum(1 for _, c in values if c != 0)
        bar = "█" * max(1, round(BAR_WIDTH * len(values) / most))
        lines.append(
            f"{command[:21]:<22}{len(values):>6}{failed:>8}{failed / len(values):>8.0%}"
            f"{_ms(_percentile(durations, 0.5)):>10}{_ms(_percentile(durations, 0.95)):>10}  {bar}"
        )
    lines.append("")
    lines.append("exit codes: " + ", ".join(f"{c} ×{n}" for c, n in sorted(codes.items())))
    if errors:
        lines.append("errors:     " + ", ".join(f"{e} ×{n}" for e, n in errors.most_common()))
    return "\n".join(lines)
