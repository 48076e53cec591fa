"""How a command ended, as ``process.exit.code`` and ``error.type``.

The mapping never records messages or tracebacks, only class names and fixed words:

- normal end: 0; ``sys.exit(n)`` / ``ctx.exit(n)``: n, with ``error.type="exit"`` when n != 0;
- usage errors (click/typer ``UsageError``, argparse's ``error()``): 2, ``usage_error``;
- Ctrl-C: ``interrupted`` (exit 130 when Python or typer exit with it; click exits 1);
- SIGTERM: 143, ``terminated``;
- an uncaught exception: 1, its qualified class name (``builtins.`` left out).

A ``SystemExit`` raised while handling another exception (click does ``sys.exit(e.exit_code)``
inside ``except ClickException``) is classified by that exception, found on its
``__context__``/``__cause__`` chain.
"""

from __future__ import annotations

INTERRUPTED = "interrupted"
TERMINATED = "terminated"
USAGE_ERROR = "usage_error"
EXIT = "exit"

SIGINT_EXIT_CODE = 130
SIGTERM_EXIT_CODE = 143

_CLICK_MODULES = ("click.", "typer.")


def qualified_name(exc_type: type[BaseException]) -> str:
    """``ValueError``, ``deployctl.errors.QuotaError``: code names, never user data."""
    module = getattr(exc_type, "__module__", "") or ""
    name = getattr(exc_type, "__qualname__", None) or exc_type.__name__
    if module in ("builtins", "__main__", ""):
        return name
    return f"{module}.{name}"


def _is_click(exc: BaseException, class_name: str) -> bool:
    """Whether ``exc`` is click's (or typer's vendored click's) ``class_name`` or a subclass."""
    for klass in type(exc).__mro__:
        if klass.__name__ == class_name and klass.__module__.startswith(_CLICK_MODULES):
            return True
    return False


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 16 and all(current is not s for s in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def usage_error_class(exc: BaseException) -> bool:
    """Whether ``exc`` is a command-line usage error of click, typer or argparse."""
    return _is_click(exc, "UsageError") or type(exc).__name__ == "ArgumentError"


def _error_type_of(exc: BaseException) -> str | None:
    """The ``error.type`` an exception on the chain stands for, or None (not an error)."""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if usage_error_class(exc):
        return USAGE_ERROR
    if isinstance(exc, SystemExit) or _is_click(exc, "Exit"):
        return None
    if _is_click(exc, "Abort"):
        return None  # Abort wraps Ctrl-C or EOF; the cause decides
    return qualified_name(type(exc))


def _cause_error_type(exc: BaseException) -> str | None:
    for link in _chain(exc)[1:]:
        found = _error_type_of(link)
        if found is not None:
            return found
    return None


def exit_code_of(code: object) -> int:
    """``SystemExit.code`` as the process exit status Python would use."""
    if code is None:
        return 0
    if isinstance(code, bool):
        return int(code)
    if isinstance(code, int):
        return code & 0xFF  # what the OS keeps of it: sys.exit(-1) is 255, sys.exit(256) is 0
    return 1  # sys.exit("message") prints the message and exits 1


def classify(exc: BaseException) -> tuple[int, str | None]:
    """(exit code, error.type) for a command that ended with ``exc``."""
    if isinstance(exc, SystemExit) or _is_click(exc, "Exit"):
        raw = exc.code if isinstance(exc, SystemExit) else getattr(exc, "exit_code", 0)
        code = exit_code_of(raw)
        if code == 0:
            return 0, None
        return code, _cause_error_type(exc) or EXIT
    if isinstance(exc, KeyboardInterrupt):
        return SIGINT_EXIT_CODE, INTERRUPTED
    if _is_click(exc, "Abort"):
        cause = _cause_error_type(exc)
        return 1, cause or qualified_name(type(exc))
    if usage_error_class(exc):
        return exit_code_of(getattr(exc, "exit_code", 2)), USAGE_ERROR
    if _is_click(exc, "ClickException"):
        return exit_code_of(getattr(exc, "exit_code", 1)), qualified_name(type(exc))
    return 1, qualified_name(type(exc))
