"""The command span as the app's current OpenTelemetry span context.

When the app itself uses ``opentelemetry-api`` (its own tracer, or an instrumented HTTP
client), its spans should be children of the command span (or of the open phase), and its
outgoing requests should carry ``traceparent`` for them: a ``deploy`` command's trace then
continues into the backend it calls. So while a record (or a phase) is open, a
``NonRecordingSpan`` with its ids and sampled flag is attached with ``opentelemetry.context``.

Zero cost when the app never uses OpenTelemetry: nothing is imported here. If
``opentelemetry.trace`` is already imported when a record opens, the context is attached at
once; otherwise a post-import hook attaches it for the open record and phases the moment the
app imports it.
"""

from __future__ import annotations

import sys
from typing import Any

from .._internal import internal_errors

_MODULE = "opentelemetry.trace"
_hook_registered = False
#: (ids holder, token) for every attached context, innermost last.
_attached: list[tuple[Any, Any]] = []
#: Holders (records and phases) opened before ``opentelemetry.trace`` was imported.
_waiting: list[tuple[Any, str, str, bool]] = []


def _attach_now(holder: Any, trace_id: str, span_id: str, sampled: bool) -> None:
    from opentelemetry import context, trace

    span = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=int(trace_id, 16),
            span_id=int(span_id, 16),
            is_remote=False,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else 0),
        )
    )
    token = context.attach(trace.set_span_in_context(span))
    _attached.append((holder, token))


def _on_import(module: Any) -> None:
    with internal_errors("OpenTelemetry context (late)"):
        waiting = list(_waiting)
        _waiting.clear()
        for holder, trace_id, span_id, sampled in waiting:
            _attach_now(holder, trace_id, span_id, sampled)


def enter(holder: Any, trace_id: str, span_id: str, sampled: bool) -> None:
    """Make ``span_id`` the current span context for the app's OpenTelemetry code."""
    if _MODULE in sys.modules:
        _attach_now(holder, trace_id, span_id, sampled)
        return
    global _hook_registered
    _waiting.append((holder, trace_id, span_id, sampled))
    if not _hook_registered:
        _hook_registered = True
        import wrapt

        wrapt.register_post_import_hook(_on_import, _MODULE)


def leave(holder: Any) -> None:
    """Restore the context from before ``holder`` was entered (if it was attached)."""
    _waiting[:] = [w for w in _waiting if w[0] is not holder]
    for index in range(len(_attached) - 1, -1, -1):
        if _attached[index][0] is holder:
            token = _attached.pop(index)[1]
            _detach(token)
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
    _waiting.clear()
