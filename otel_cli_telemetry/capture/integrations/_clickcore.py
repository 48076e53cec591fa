"""Wrappers shared by the click and typer integrations (typer 0.26+ vendors its own click).

- ``main`` (or typer's ``_main``) is the command boundary: it opens the record and ends it
  with the exit code and ``error.type`` of however it left (return, ``SystemExit``, exception).
- ``make_context`` names the command about to be parsed, so a usage error in a subcommand's
  arguments is recorded against that subcommand, and marks usage errors.
- ``invoke`` names the command that runs (the deepest one wins; chained ones are joined),
  collects the names of options given on the command line, and notes ``ctx.exit(n)`` codes
  for ``standalone_mode=False``.

Command names come from the code (``command.name``), never from what the user typed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ..._internal import internal_errors
from .. import exits, session
from ..record import CommandRecord

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def command_path(ctx: Any) -> tuple[str, ...]:
    """Names of the commands from below the root to ``ctx``'s command."""
    names: list[str] = []
    while ctx is not None and getattr(ctx, "parent", None) is not None:
        names.append(str(ctx.command.name or ""))
        ctx = ctx.parent
    return tuple(reversed(names))


def option_name(param: Any, value: Any = None) -> str:
    """The option's longest declared name (``--force`` rather than ``-f``); for a boolean
    ``--cache/--no-cache`` flag set to false, the secondary name (``--no-cache``)."""
    secondary = list(getattr(param, "secondary_opts", ()))
    if secondary and getattr(param, "is_flag", False) and value is False:
        return str(max(secondary, key=len))
    opts = list(getattr(param, "opts", ())) or [str(param.name)]
    return str(max(opts, key=len))


def given_options(ctx: Any) -> set[str]:
    """Names of the options whose value came from the command line."""
    found: set[str] = set()
    for param in getattr(ctx.command, "params", ()):
        if getattr(param, "param_type_name", "") != "option" or not param.name:
            continue
        source = ctx.get_parameter_source(param.name)
        if source is not None and getattr(source, "name", "") == "COMMANDLINE":
            found.add(option_name(param, ctx.params.get(param.name)))
    return found


def _note_invocation(record: CommandRecord, ctx: Any) -> None:
    path = command_path(ctx)
    record.set_command_path(path)
    parent = getattr(ctx, "parent", None)
    if parent is not None and getattr(parent.command, "chain", False) and path:
        record.note_chained(path[-1])
    record.flags |= given_options(ctx)


def _note_exception(record: CommandRecord, exc: BaseException) -> None:
    """Remember how a command failed: click may catch the exception and exit later.

    (click 8.2+ calls ``sys.exit`` after its ``except`` blocks, so the ``SystemExit`` no
    longer carries the exception on its context chain.)
    """
    code, error_type = exits.classify(exc)
    if error_type in (None, exits.EXIT):
        record.exit_hint = code
    elif record.error_hint is None:
        record.error_hint = error_type
    if error_type == exits.USAGE_ERROR:
        record.usage_error = True


def wrap_invoke(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    """``Command.invoke``: name the running command and collect option names."""
    record = None
    with internal_errors("click invoke"):
        started = time.perf_counter_ns()
        record = session.current()
        ctx = args[0] if args else kwargs.get("ctx")
        if record is not None and ctx is not None:
            _note_invocation(record, ctx)
            record.overhead_ns += time.perf_counter_ns() - started
    try:
        return wrapped(*args, **kwargs)
    except BaseException as exc:
        with internal_errors("click invoke exit"):
            if record is not None:
                _note_exception(record, exc)
        raise


def wrap_make_context(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    """``Command.make_context``: name the command being parsed; mark usage errors."""
    record = None
    with internal_errors("click make_context"):
        record = session.current()
        parent = kwargs.get("parent", args[2] if len(args) > 2 else None)
        if record is not None and parent is not None:
            record.set_command_path((*command_path(parent), str(instance.name or "")))
    try:
        return wrapped(*args, **kwargs)
    except BaseException as exc:
        with internal_errors("click make_context error"):
            if record is not None:
                _note_exception(record, exc)
        raise


def _may_name_telemetry(instance: Any, args: Any, kwargs: Any) -> bool:
    """Whether the command line click will parse could run or list ``telemetry``.

    Building the subcommand costs more than the rest of a disabled run, so it is added only
    when ``telemetry``, ``help`` or a help flag is on the command line (or shell completion
    is asking for the command list).
    """
    argv = kwargs.get("args")
    if argv is None and instance is not None and args:
        argv = args[0]  # Command.main(self, args, ...); typer's _main(self, *, args=...)
    if argv is None:
        argv = sys.argv[1:]
    if any(name.endswith("_COMPLETE") for name in os.environ):
        return True
    return any(str(arg) in ("telemetry", "help", "--help", "-h") for arg in argv)


def make_main_wrapper(kind: str) -> Wrapper:
    """A wrapper for ``main`` (or typer's ``_main(self, ...)``) that owns one record.

    It also offers the root command to ``session.inject_root_command`` (the admin side's
    ``telemetry`` subcommand) when the command line may name it.
    """

    def wrap_main(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        record = None
        with internal_errors(f"{kind} main start"):
            started = time.perf_counter_ns()
            record = session.begin(kind)
            command = instance if instance is not None else (args[0] if args else None)
            inject = session.inject_root_command
            if (
                inject is not None
                and command is not None
                and _may_name_telemetry(instance, args, kwargs)
            ):
                inject(command)  # also while telemetry is off: it can say why, or turn it on
            if record is not None:
                record.overhead_ns += time.perf_counter_ns() - started
        if record is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            with internal_errors(f"{kind} main end"):
                session.finish(record, *exits.classify(exc))
            raise
        with internal_errors(f"{kind} main return"):
            code = record.exit_hint or 0
            session.finish(record, code, exits.EXIT if code else None)
        return result

    return wrap_main
