"""Hooks on the interpreter's exit paths, for records that no framework boundary closes.

- ``sys.exit`` is wrapped to note the requested code (argparse's ``parser.exit`` calls it too);
  the code is read at ``atexit``, where Python no longer exposes it.
- ``raise SystemExit(n)`` calls no function we could wrap. It is seen where it leaves a
  boundary we know of: a console script's entry point and ``python -m``'s module under the
  launcher (:func:`note_exits_of`), and on Python 3.12+ anywhere, by a ``sys.monitoring``
  callback on frames unwinding from ``__main__``'s top level (:func:`_watch_main_unwind`).
  On 3.10/3.11 a bare ``raise SystemExit(n)`` at a plain script's top level is recorded as 0
  (documented in docs/configuration.md); ``os._exit`` ends the process before any hook.
- ``sys.excepthook`` is chained to note an uncaught exception's class (exit 1, or 130 for
  Ctrl-C) before the previous hook prints the traceback as usual.
- SIGTERM: only when the host left the default action in place, a handler ends the open
  record as ``terminated`` and then re-raises SIGTERM with the default action, so the
  process still dies by the signal (exit status 143) exactly as it would have.
- ``atexit`` ends the process record, then runs the later stages' exit work
  (``session.on_exit``: reaping drainers this process started).

Every hook restores only what is still ours on :func:`uninstall`.
"""

from __future__ import annotations

import atexit
import os

try:
    # The C module behind ``signal``: same functions, without the ~0.4 ms of enum building
    # that importing ``signal`` costs on the hot path.
    import _signal as signal  # type: ignore[import-not-found]
except ImportError:  # other interpreters
    import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from .._internal import internal_errors
from . import exits, session
from .patching import wrap_function

_installed = False
_requested_exit: int | None = None
_uncaught: tuple[int, str | None] | None = None
_previous_excepthook: Callable[..., Any] | None = None
_original_exit: Callable[..., Any] | None = None


def note_exit(code: object) -> None:
    """Remember the exit status a ``SystemExit`` carrying ``code`` will end the process with."""
    global _requested_exit
    _requested_exit = exits.exit_code_of(code)


def _exit(code: object = None) -> None:
    with internal_errors("sys.exit hook"):
        note_exit(code)
    assert _original_exit is not None
    _original_exit(code)


def _note_system_exit(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    """A wrapper for a callable the process ends through: note a ``SystemExit`` leaving it."""
    try:
        return wrapped(*args, **kwargs)
    except SystemExit as exc:
        with internal_errors("SystemExit note"):
            note_exit(exc.code)
        raise


def note_exits_of(owner: Any, name: str) -> None:
    """Wrap ``owner.name`` so a ``SystemExit`` raised through it is noted (once)."""
    wrap_function(owner, name, _note_system_exit)


_MONITORING_TOOL: int | None = None


def _on_unwind(code: Any, offset: int, exc: BaseException) -> None:
    """``sys.monitoring`` PY_UNWIND: a SystemExit leaving ``__main__``'s top-level code."""
    if code.co_name == "<module>" and isinstance(exc, SystemExit):
        with internal_errors("unwind note"):
            main_file = getattr(sys.modules.get("__main__"), "__file__", None)
            if (main_file is None and code.co_filename == "<string>") or (
                main_file is not None
                and os.path.abspath(main_file) == os.path.abspath(code.co_filename)
            ):
                note_exit(exc.code)


def _watch_main_unwind() -> None:
    """On Python 3.12+, watch for ``raise SystemExit(n)`` leaving the main script.

    PY_UNWIND fires once per frame left by an exception; the callback returns after two
    attribute checks for any other frame. A free tool id is taken; none free, no watch.
    """
    global _MONITORING_TOOL
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None or _MONITORING_TOOL is not None:
        return
    for tool in (4, 3):
        if monitoring.get_tool(tool) is None:
            monitoring.use_tool_id(tool, "otel_cli_telemetry")
            monitoring.register_callback(tool, monitoring.events.PY_UNWIND, _on_unwind)
            monitoring.set_events(tool, monitoring.events.PY_UNWIND)
            _MONITORING_TOOL = tool
            return


def _unwatch_main_unwind() -> None:
    global _MONITORING_TOOL
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is not None and _MONITORING_TOOL is not None:
        monitoring.set_events(_MONITORING_TOOL, 0)
        monitoring.register_callback(_MONITORING_TOOL, monitoring.events.PY_UNWIND, None)
        monitoring.free_tool_id(_MONITORING_TOOL)
    _MONITORING_TOOL = None


#: Frames from this folder are ours (the package, wrappers included: see :mod:`.patching`).
_OUR_DIRS = (os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir)) + os.sep,)


def _is_ours(tb: TracebackType) -> bool:
    return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_OUR_DIRS)


def without_our_frames(tb: TracebackType | None) -> TracebackType | None:
    """The traceback with the SDK's wrapper frames unlinked.

    An uncaught exception's traceback then reads exactly as it would without telemetry.
    """
    head: TracebackType | None = None
    last: TracebackType | None = None
    while tb is not None:
        following = tb.tb_next
        if not _is_ours(tb):
            if last is None:
                head = tb
            else:
                last.tb_next = tb
            last = tb
        tb = following
    if last is not None:
        last.tb_next = None
    return head


def _strip_chain(exc: BaseException) -> None:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 16 and all(current is not s for s in seen):
        seen.append(current)
        current.__traceback__ = without_our_frames(current.__traceback__)
        current = current.__cause__ or current.__context__


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    global _uncaught
    with internal_errors("excepthook"):
        if not issubclass(exc_type, SystemExit):
            _uncaught = exits.classify(exc)
        tb = without_our_frames(tb)
        _strip_chain(exc)
    previous = _previous_excepthook or sys.__excepthook__
    previous(exc_type, exc, tb)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    with internal_errors("SIGTERM hook"):
        record = session.active
        if record is not None and not record.finished:
            session.finish(record, exits.SIGTERM_EXIT_CODE, exits.TERMINATED)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _at_exit() -> None:
    with internal_errors("atexit"):
        if _uncaught is not None:
            code, error_type = _uncaught
        else:
            code, error_type = (_requested_exit or 0), None
        session.finish_process_record(code, error_type)
    if session.on_exit is not None:
        with internal_errors("exit work of the later stages"):
            session.on_exit()


def install() -> None:
    """Install the hooks once per process."""
    global _installed, _previous_excepthook, _original_exit
    if _installed:
        return
    _installed = True
    _previous_excepthook = sys.excepthook
    sys.excepthook = _excepthook
    _original_exit = sys.exit
    sys.exit = _exit  # type: ignore[assignment]  # same signature, minus NoReturn's promise
    atexit.register(_at_exit)
    with internal_errors("unwind watch"):
        _watch_main_unwind()
    if threading.current_thread() is threading.main_thread():
        with internal_errors("SIGTERM install"):
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _on_sigterm)


def uninstall() -> None:
    """Remove the hooks, leaving alone any that someone replaced after us."""
    global _installed, _requested_exit, _uncaught
    if not _installed:
        return
    _installed = False
    if sys.excepthook is _excepthook:
        sys.excepthook = _previous_excepthook or sys.__excepthook__
    if sys.exit is _exit and _original_exit is not None:
        sys.exit = _original_exit
    atexit.unregister(_at_exit)
    with internal_errors("unwind unwatch"):
        _unwatch_main_unwind()
    if threading.current_thread() is threading.main_thread():
        with internal_errors("SIGTERM uninstall"):
            if signal.getsignal(signal.SIGTERM) is _on_sigterm:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _requested_exit = None
    _uncaught = None
