"""argparse integration: names the command on the process record; exit comes from the hooks.

argparse only parses: the program runs after ``parse_args`` returns, so the record is the
process record opened by ``init()`` and ended at interpreter exit (``capture.process``).

- ``_SubParsersAction.__call__`` names the chosen subcommand (nested ones too), by its
  canonical name when an alias was typed; an unknown name is never recorded (it is a usage
  error, and could be anything the user typed).
- ``ArgumentParser.parse_known_args`` (``parse_args`` and ``parse_intermixed_args`` use it)
  collects the names of options given, only those the parser declares, by their longest name.
- ``ArgumentParser.error`` marks a usage error (it exits 2 through ``sys.exit``). A parser
  class that overrides ``error`` without calling ours (httpie's prints its own message, then
  ``self.exit(2)``) gets its override wrapped too, the first time one of its parsers parses,
  so the CLI's own ``parser.error(...)`` calls count as usage errors as well.

CLIs that want a record per command, not per process, can wrap ``main`` in
``otel_cli_telemetry.command(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..._internal import internal_errors
from .. import session
from . import Integration, defining_class

_subcommand_stack: list[str] = []


def _canonical_name(action: Any, typed: str) -> str | None:
    parser_map = getattr(action, "_name_parser_map", {})
    chosen = parser_map.get(typed)
    if chosen is None:
        return None
    for name, parser in parser_map.items():
        if parser is chosen:
            return str(name)
    return typed


def _wrap_subparsers_call(
    wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
) -> Any:
    name = None
    with internal_errors("argparse subcommand"):
        values = args[2] if len(args) > 2 else kwargs.get("values")
        record = session.current()
        if record is not None and values:
            name = _canonical_name(instance, str(values[0]))
            if name is not None:
                _subcommand_stack.append(name)
                record.set_command_path(tuple(_subcommand_stack))
    try:
        return wrapped(*args, **kwargs)
    finally:
        if name is not None:
            _subcommand_stack.pop()


def _option_name(action: Any, typed: str) -> str:
    """A long option as typed (``--no-cache`` of a BooleanOptionalAction stays itself);
    a short one by the action's longest name (``-f`` -> ``--force``). Both are declared
    option strings, never user input."""
    if typed.startswith("--"):
        return typed
    return str(max(action.option_strings, key=len))


def _given_options(parser: Any, tokens: list[str]) -> set[str]:
    known = getattr(parser, "_option_string_actions", {})
    found: set[str] = set()
    for arg in tokens:
        if arg == "--":
            break
        if not arg.startswith(tuple(getattr(parser, "prefix_chars", "-"))) or len(arg) < 2:
            continue
        typed = arg.split("=", 1)[0]
        action = known.get(typed)
        if action is not None:
            found.add(_option_name(action, typed))
    return found


_integration: ArgparseIntegration | None = None


def _wrap_overridden_error(parser: Any) -> None:
    """Wrap ``error`` where ``parser``'s class overrides ``ArgumentParser.error``."""
    import argparse

    owner = defining_class(type(parser), "error")
    if owner is not argparse.ArgumentParser and _integration is not None:
        _integration.wrap(owner, "error", _wrap_error)


def _wrap_parse_known_args(
    wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
) -> Any:
    with internal_errors("argparse options"):
        record = session.current()
        if record is not None:
            _wrap_overridden_error(instance)
            tokens = args[0] if args else kwargs.get("args")
            if tokens is None:
                import sys

                tokens = sys.argv[1:]
            record.flags |= _given_options(instance, [str(t) for t in tokens])
    return wrapped(*args, **kwargs)


def _wrap_error(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    with internal_errors("argparse error"):
        record = session.current()
        if record is not None:
            record.usage_error = True
    return wrapped(*args, **kwargs)


class ArgparseIntegration(Integration):
    """Patches ``argparse.ArgumentParser`` and ``argparse._SubParsersAction``."""

    module_name = "argparse"

    def patch(self, module: Any) -> None:
        """Wrap the three argparse methods above."""
        global _integration
        _integration = self
        self.wrap(module._SubParsersAction, "__call__", _wrap_subparsers_call)
        self.wrap(module.ArgumentParser, "parse_known_args", _wrap_parse_known_args)
        self.wrap(module.ArgumentParser, "error", _wrap_error)
