"""The command span as the app's current OpenTelemetry span context.

When the app itself uses ``opentelemetry-api`` (its own tracer, or an instrumented HTTP
client), its spans should be children of the command span (or of the open phase), and its
outgoing requests should carry ``traceparent`` for them: a ``deploy`` command's trace then
continues into the backend it calls. So while a record (or a phase) is open, a
``NonRecordingSpan`` with its ids and sampled flag is attached with ``opentelemetry.context``.

Zero cost when the app never uses OpenTelemetry: this module is not even imported then.
:func:`otel_cli_telemetry.capture.session.open_context` imports it only if
``opentelemetry.trace`` is already imported; otherwise a post-import hook loads it the moment
the app imports ``opentelemetry.trace``, and attaches the record and phases open then.
"""

from __future__ import annotations

from typing import Any

from .._internal import internal_errors

#: (record or phase, token) for every attached context, innermost last.
_attached: list[tuple[Any, Any]] = []


def _attach(holder: Any, trace_id: str, span_id: str, sampled: bool) -> None:
    from opentelemetry import context, trace

    span = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=int(trace_id, 16),
            span_id=int(span_id, 16),
            is_remote=False,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else 0),
        )
    )
    _attached.append((holder, context.attach(trace.set_span_in_context(span))))


def enter(holder: Any, trace_id: str, span_id: str, sampled: bool) -> None:
    """Make ``span_id`` the current span context (``opentelemetry.trace`` is imported)."""
    _attach(holder, trace_id, span_id, sampled)


def leave(holder: Any) -> None:
    """Restore the context from before ``holder`` was attached (if it was)."""
    for index in range(len(_attached) - 1, -1, -1):
        if _attached[index][0] is holder:
            _detach(_attached.pop(index)[1])
            return


def _detach(token: Any) -> None:
    """Detach quietly: OpenTelemetry's ``detach`` logs a traceback on a foreign token."""
    from opentelemetry import context

    runtime = getattr(context, "_RUNTIME_CONTEXT", None)
    if runtime is not None:
        runtime.detach(token)
    else:
        context.detach(token)


def reset() -> None:
    """Forget everything (tests); detaches what is still attached, innermost first."""
    while _attached:
        _holder, token = _attached.pop()
        with internal_errors("OpenTelemetry context reset"):
            _detach(token)
