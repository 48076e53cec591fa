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

from ..config import Settings
from . import control


def _progress(done: int, total: int) -> None:
    """A one-line progress bar, redrawn in place (only ever on a terminal's stderr)."""
    width = 30
    filled = width if total == 0 else min(width, round(width * done / max(total, 1)))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} delivered")
    sys.stderr.flush()


def flush(settings: Settings, timeout_s: float) -> tuple[str, int]:
    """Deliver everything waiting now, through an open breaker; (text, exit code).

    A detached drainer may be at work: ``flush`` waits for it (within ``timeout_s``) and then
    delivers what is left itself. The progress bar goes to stderr, and only to a terminal.
    """
    from ..delivery.drainer import drain
    from ..handoff import spool

    if settings.endpoint is None:
        return (
            "No endpoint configured (set OTEL_EXPORTER_OTLP_ENDPOINT); "
            "records stay on this machine.",
            1,
        )
    deadline = time.time() + timeout_s
    if not spool.count(settings.paths):
        return "Nothing to deliver.", 0
    tty = sys.stderr.isatty()
    delivered = dropped = 0
    while True:
        report = drain(
            settings.paths,
            endpoint=settings.options.endpoint,
            protocol=settings.protocol,
            deadline=deadline,
            respect_breaker=False,
            progress=_progress if tty else None,
        )
        delivered += report.delivered
        dropped += report.dropped
        if not report.locked_out or time.time() >= deadline:
            break
        if not spool.count(settings.paths):
            # The detached drainer (it lingers between commands) took everything: done.
            if tty:
                sys.stderr.write("\n")
            return "The running drainer delivered everything; 0 waiting.", 0
        time.sleep(0.1)  # a drainer holds the lock: it is delivering; wait our turn
    if tty:
        sys.stderr.write("\n")
    if report.locked_out:
        return "A drainer is still delivering; try again in a moment.", 1
    text = f"Delivered {delivered} record(s); {report.remaining} waiting"
    if dropped:
        text += f"; {dropped} dropped"
    if report.errors:
        text += f". Last error: {report.errors[-1]}"
    return text + ".", 0 if report.remaining == 0 else 1


_HINTS = {
    401: "authentication failed: check OTEL_EXPORTER_OTLP_HEADERS (e.g. the API key)",
    403: "forbidden: the credentials lack the right to ingest",
    404: "not found: check the endpoint (the base URL, without /v1/traces)",
    407: "the proxy wants credentials (check HTTPS_PROXY)",
    429: "rate limited by the backend",
    503: "the backend is unavailable or overloaded",
}


def _failure_hint(status: int | None, error: str) -> str:
    """What to check, from the status code or the error text."""
    if status in _HINTS:
        return _HINTS[status]
    if status is not None and 300 <= status < 400:
        return "the endpoint redirects: use the final URL (redirects are not followed)"
    lowered = error.lower()
    if "certificate" in lowered or "ssl" in lowered:
        return "TLS failed: set OTEL_EXPORTER_OTLP_CERTIFICATE to the CA that signed the server"
    if "refused" in lowered:
        return "nothing listens there: is the collector running?"
    if "timed out" in lowered or "timeout" in lowered:
        return "no answer in time: a firewall, proxy or hung collector?"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "the host name does not resolve"
    return ""


def doctor(settings: Settings) -> tuple[str, int]:
    """Test the endpoint with an empty OTLP export; (text, exit code).

    Reports reachability, TLS (plain, system store or custom CA), auth (a 401/403 hint),
    latency, and the state of the breaker and the spool. Exit 1 also when the log file
    (``<APP>_TELEMETRY_LOG``) cannot be written. Never raises.
    """
    import os

    from .._files import why_not_appendable
    from ..delivery.breaker import DeliveryState
    from ..delivery.lock import held_by_someone
    from ..delivery.transport import OK, make_transport, request_timeout
    from ..handoff import spool

    lines = [control.status(settings), ""]
    # A log file that cannot be written is a problem the doctor found (status names it).
    log_broken = 0
    if settings.log_path is not None and why_not_appendable(settings.log_path) is not None:
        log_broken = 1
    breaker = DeliveryState.load(settings.paths)
    if breaker.is_open(endpoint=settings.endpoint):
        state = f"open for {int(breaker.open_until - time.time())} s more"
    elif breaker.is_open():
        state = f"closed for this endpoint (open for {breaker.endpoint})"
    else:
        state = "closed"
    last = f"; last error: {breaker.last_error}" if breaker.last_error else ""
    tail = [
        f"  breaker: {state}, {breaker.failures} consecutive failure(s){last}",
        f"  spool: {spool.count(settings.paths)} record(s) waiting, "
        f"{spool.pending_drops(settings.paths)} drop(s) not yet reported; "
        f"drainer {'running' if held_by_someone(settings.paths.lock_file) else 'idle'}",
    ]
    from ..delivery.drainer import last_run_cost

    cost = last_run_cost(settings.paths)
    if cost:
        tail.append(f"  {cost}")
    if settings.endpoint is None:
        lines.append("endpoint: none configured; nothing is sent (local history only).")
        return "\n".join(lines + tail), log_broken
    try:
        transport = make_transport(settings.options.endpoint, settings.protocol)
        urls = getattr(transport, "urls", {})
        outcome = transport.send_traces([])
        tls = transport.tls_summary()
    except Exception as exc:  # a doctor reports what is wrong; it does not crash on it
        lines.append(
            f"endpoint check: FAILED to configure the exporter: {type(exc).__name__}: {exc}"
        )
        return "\n".join(lines + tail), 1
    from ..config import delivery_protocol

    lines.append(
        f"endpoint check ({delivery_protocol(settings.protocol)}, "
        f"timeout {request_timeout(os.environ)} s):"
    )
    if urls.get("TRACES"):
        lines.append(f"  traces URL: {urls['TRACES']}")
    lines.append(f"  TLS: {tls}")
    if outcome.kind == OK:
        lines.append(
            f"  OK: accepted an empty export in {outcome.latency_ms:.0f} ms "
            f"(HTTP {outcome.status or 'ok'}); reachable, TLS and auth are fine."
        )
        code = 0
    else:
        shown = outcome.status and not outcome.error.startswith("HTTP")
        status = f"HTTP {outcome.status}: " if shown else ""
        hint = _failure_hint(outcome.status, outcome.error)
        lines.append(
            f"  FAILED: {status}{outcome.error} after {outcome.latency_ms:.0f} ms."
            + (f" Hint: {hint}{'' if hint.endswith('?') else '.'}" if hint else "")
        )
        code = 1
    return "\n".join(lines + tail), code or log_broken


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
    schema_parser.add_argument("--format", choices=control.FORMATS, default="text")
    args = parser.parse_args(argv)

    settings = control.settings_for(args.app, args.state_dir)
    code = 0
    if args.action in control.ACTIONS:
        text, code = control.run_action(settings, args.action, getattr(args, "format", "text"))
    elif args.action == "report":
        from ..handoff import local_log
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
