"""``otel-cli-telemetry``: the admin command for any app using this SDK.

    otel-cli-telemetry --app deployctl status|enable|disable|report|flush|doctor|schema

``status`` says whether telemetry is on and which source decided; ``report`` summarises what
this machine recorded; ``flush`` delivers the spool now, in the foreground, with progress;
``doctor`` tests the endpoint (reachability, TLS, auth, latency) and shows breaker and spool.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import control
from .config import Settings


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width if total == 0 else min(width, round(width * done / max(total, 1)))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} delivered")
    sys.stderr.flush()


def flush(settings: Settings, timeout_s: float) -> tuple[str, int]:
    """Deliver everything waiting now, through an open breaker; (text, exit code)."""
    from .delivery.drainer import drain
    from .handoff import spool

    if settings.endpoint is None:
        return (
            "No endpoint configured (set OTEL_EXPORTER_OTLP_ENDPOINT); "
            "records stay on this machine.",
            1,
        )
    waiting = spool.count(settings.paths)
    if not waiting:
        return "Nothing to deliver.", 0
    report = drain(
        settings.paths,
        endpoint=settings.endpoint,
        protocol=settings.protocol,
        deadline=time.time() + timeout_s,
        respect_breaker=False,
        progress=_progress if sys.stderr.isatty() else None,
    )
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if report.locked_out:
        return "A drainer is delivering right now; try again in a moment.", 1
    text = f"Delivered {report.delivered} record(s); {report.remaining} waiting"
    if report.dropped:
        text += f"; {report.dropped} dropped"
    if report.errors:
        text += f". Last error: {report.errors[-1]}"
    return text + ".", 0 if report.remaining == 0 else 1


def doctor(settings: Settings) -> tuple[str, int]:
    """Test the endpoint with an empty OTLP export; (text, exit code)."""
    from .delivery.breaker import DeliveryState
    from .delivery.transport import OK, make_transport, request_timeout

    lines = [control.status(settings), ""]
    if settings.endpoint is None:
        lines.append("endpoint: none configured; nothing is sent (local history only).")
        return "\n".join(lines), 0
    try:
        transport = make_transport(settings.endpoint, settings.protocol)
        outcome = transport.send_traces([])
    except Exception as exc:  # a doctor reports what is wrong; it does not crash on it
        lines.append(
            f"endpoint check: FAILED to configure the exporter: {type(exc).__name__}: {exc}"
        )
        return "\n".join(lines), 1
    import os

    lines.append(f"endpoint check ({settings.protocol}, timeout {request_timeout(os.environ)} s):")
    if outcome.kind == OK:
        lines.append(
            f"  OK: accepted an empty export in {outcome.latency_ms:.0f} ms "
            f"(HTTP {outcome.status or 'ok'}); TLS and auth are fine."
        )
        code = 0
    else:
        hint = {
            401: "authentication failed: check OTEL_EXPORTER_OTLP_HEADERS",
            403: "forbidden: check the token's rights",
            404: "not found: check the endpoint path",
        }.get(outcome.status or 0, "")
        lines.append(
            f"  FAILED: {outcome.error} after {outcome.latency_ms:.0f} ms. {hint}".rstrip()
        )
        code = 1
    breaker = DeliveryState.load(settings.paths)
    lines.append(
        f"  breaker: {'open' if breaker.is_open() else 'closed'}, "
        f"{breaker.failures} consecutive failure(s)"
    )
    return "\n".join(lines), code


def main(argv: list[str] | None = None) -> int:
    """Run the admin command."""
    parser = argparse.ArgumentParser(prog="otel-cli-telemetry", description=__doc__.split("\n")[0])
    parser.add_argument("--app", required=True, help="the app's name, as given to init()")
    parser.add_argument("--state-dir", default=None, help="override the app's state dir")
    commands = parser.add_subparsers(dest="action", required=True)
    for name, help_text in (
        ("status", "whether telemetry is on, and which source decided"),
        ("enable", "turn telemetry on"),
        ("disable", "turn telemetry off and delete unsent records"),
        ("report", "summary of what this machine recorded"),
        ("doctor", "test the endpoint; show breaker and spool"),
    ):
        commands.add_parser(name, help=help_text)
    flush_parser = commands.add_parser("flush", help="deliver now, in the foreground")
    flush_parser.add_argument("--timeout", type=float, default=60.0)
    schema_parser = commands.add_parser("schema", help="every field the app can send")
    schema_parser.add_argument("--format", choices=("text", "json", "collector"), default="text")
    args = parser.parse_args(argv)

    settings = control.settings_for(args.app, args.state_dir)
    code = 0
    if args.action == "status":
        text = control.status(settings)
    elif args.action == "enable":
        text = control.enable(settings)
    elif args.action == "disable":
        text = control.disable(settings)
    elif args.action == "schema":
        text = control.schema_text(settings, args.format)
    elif args.action == "report":
        from .handoff import local_log
        from .report import render

        text = render(args.app, local_log.read(settings.paths))
    elif args.action == "flush":
        text, code = flush(settings, args.timeout)
    else:
        text, code = doctor(settings)
    sys.stdout.write(text.rstrip("\n") + "\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
