"""Wrapping functions in place, and running code when a module is imported.

The integrations patch click, typer and argparse, the launcher patches an app's entry point,
and the session attaches to OpenTelemetry once the app imports it. Those need two small
mechanisms, written here instead of importing a general-purpose wrapping library: on every
CLI run the import of wrapt cost 8.4 M CPU instructions, most of it for features we do not
use (issue 12).

- :func:`wrap_function` replaces ``owner.name`` (a class, module or object attribute) with a
  wrapper that calls ``wrapper(wrapped, instance, args, kwargs)``; :func:`unwrap` puts back the
  original; :func:`is_ours` recognises what :func:`wrap_function` installed.
- :func:`when_imported` runs a callback with a module as soon as it has been imported (at
  once if it already is), through one finder at the front of ``sys.meta_path``.

Neither ever raises into the host program's import or call: our errors go to
:func:`~otel_cli_telemetry._internal.internal_errors`, the host's own exceptions pass
through unchanged.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from functools import partial, update_wrapper
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType
from typing import TYPE_CHECKING, Any

from .._internal import debug, internal_errors

if TYPE_CHECKING:  # subscripting Callable at import time costs ~0.6 M instructions
    #: ``wrapper(wrapped, instance, args, kwargs)``: ``wrapped`` is the original, already
    #: bound when reached through an instance (or a class, for a classmethod); ``instance``
    #: is that instance (the class for a classmethod, ``None`` for a plain or static function).
    Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

#: How many ``__wrapped__`` links :func:`_find_ours` follows under someone else's wrapper.
_CHAIN_LIMIT = 8


class FunctionWrapper:
    """Stands in for a function (plain, static or class method, or module function).

    It carries the original's ``__wrapped__``, ``__name__``, ``__qualname__``, ``__doc__``,
    ``__module__`` and attributes, and binds as the original does: through an instance the
    wrapper sees ``instance`` and a bound ``wrapped``; through the class, a plain method's
    first argument becomes ``instance``, so ``Command.main(cmd, ...)`` looks to the wrapper
    like ``cmd.main(...)``. Once removed (:func:`unwrap`), it calls the original directly,
    for anyone who still holds it.
    """

    _wrapper: Wrapper
    _kind: str
    _active: bool
    _defined_here: bool

    def __init__(self, wrapped: Any, wrapper: Wrapper, kind: str, defined_here: bool) -> None:
        update_wrapper(self, wrapped)
        self._wrapper = wrapper
        self._kind = kind
        self._active = True
        self._defined_here = defined_here

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        wrapped = self.__wrapped__
        if not self._active:
            return wrapped(*args, **kwargs)
        return self._wrapper(wrapped, None, args, kwargs)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        bound = self.__wrapped__.__get__(instance, owner)
        if self._kind == "class":
            return _Bound(self, getattr(bound, "__self__", owner), bound, False)
        if self._kind == "static":
            return _Bound(self, None, bound, False)
        return _Bound(self, instance, bound, instance is None)

    def __getattr__(self, name: str) -> Any:
        try:
            wrapped = self.__dict__["__wrapped__"]
        except KeyError:
            raise AttributeError(name) from None
        return getattr(wrapped, name)

    def __repr__(self) -> str:
        return f"<otel_cli_telemetry wrapper of {self.__wrapped__!r}>"


class _Bound:
    """A :class:`FunctionWrapper` reached through an instance or a class."""

    __slots__ = ("__wrapped__", "_from_class", "_instance", "_parent")

    def __init__(self, parent: FunctionWrapper, instance: Any, bound: Any, from_class: bool):
        self._parent = parent
        self._instance = instance
        self.__wrapped__ = bound
        self._from_class = from_class

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        parent = self._parent
        if not parent._active or (self._from_class and not args):
            return self.__wrapped__(*args, **kwargs)
        if self._from_class:
            instance = args[0]
            return parent._wrapper(partial(self.__wrapped__, instance), instance, args[1:], kwargs)
        return parent._wrapper(self.__wrapped__, self._instance, args, kwargs)

    @property
    def __doc__(self) -> str | None:  # type: ignore[override]
        return getattr(self.__wrapped__, "__doc__", None)

    @property
    def __module__(self) -> str | None:  # type: ignore[override]
        return getattr(self.__wrapped__, "__module__", None)

    def __getattr__(self, name: str) -> Any:
        if name == "__wrapped__":
            raise AttributeError(name)
        return getattr(self.__wrapped__, name)

    def __repr__(self) -> str:
        return f"<otel_cli_telemetry wrapper of {self.__wrapped__!r}>"


class ObjectWrapper:
    """Stands in for a callable object, such as an entry point that is a click group or a
    Typer app: calls go through the wrapper (``instance`` is ``None``); attribute reads, writes
    and ``isinstance`` checks reach the object, so code that imports it later still works."""

    __slots__ = ("__wrapped__", "_active", "_defined_here", "_wrapper")

    def __init__(self, wrapped: Any, wrapper: Wrapper, defined_here: bool) -> None:
        object.__setattr__(self, "__wrapped__", wrapped)
        object.__setattr__(self, "_wrapper", wrapper)
        object.__setattr__(self, "_active", True)
        object.__setattr__(self, "_defined_here", defined_here)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        get = object.__getattribute__
        wrapped = get(self, "__wrapped__")
        if not get(self, "_active"):
            return wrapped(*args, **kwargs)
        return get(self, "_wrapper")(wrapped, None, args, kwargs)

    def __getattribute__(self, name: str) -> Any:
        if name in ObjectWrapper.__slots__:
            return object.__getattribute__(self, name)
        return getattr(object.__getattribute__(self, "__wrapped__"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ObjectWrapper.__slots__:
            object.__setattr__(self, name, value)
        else:
            setattr(object.__getattribute__(self, "__wrapped__"), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(object.__getattribute__(self, "__wrapped__"), name)

    def __repr__(self) -> str:
        return repr(object.__getattribute__(self, "__wrapped__"))


def is_ours(obj: object) -> bool:
    """Whether ``obj`` is a wrapper :func:`wrap_function` installed (exact type: an
    :class:`ObjectWrapper` answers ``isinstance`` checks as the object it wraps)."""
    return type(obj) is FunctionWrapper or type(obj) is ObjectWrapper


def _raw(owner: Any, name: str) -> tuple[Any, bool]:
    """(the attribute as stored, unbound; whether ``owner`` itself stores it)."""
    if isinstance(owner, type):
        for klass in owner.__mro__:
            if name in vars(klass):
                return vars(klass)[name], klass is owner
        return None, False
    if isinstance(owner, ModuleType):
        return getattr(owner, name, None), True
    own = getattr(owner, "__dict__", None)
    return getattr(owner, name, None), isinstance(own, dict) and name in own


def _find_ours(current: Any) -> Any:
    """Our wrapper at ``current`` or under someone else's wrappers on top of it, if any."""
    for _ in range(_CHAIN_LIMIT):
        if is_ours(current):
            return current
        current = getattr(current, "__wrapped__", None)
        if current is None:
            return None
    return None


def _kind(raw: Any) -> str | None:
    if isinstance(raw, FunctionType):
        return "function"
    if isinstance(raw, staticmethod):
        return "static"
    if isinstance(raw, classmethod):
        return "class"
    if isinstance(raw, type) or not callable(raw):
        return None
    if isinstance(raw, (BuiltinFunctionType, MethodType)) or not hasattr(type(raw), "__get__"):
        return "object"
    return None  # another kind of descriptor: binding it our way could change its meaning


def wrap_function(owner: Any, name: str, wrapper: Wrapper) -> bool:
    """Replace ``owner.name`` with a wrapper calling ``wrapper(wrapped, instance, args, kwargs)``.

    ``owner`` is a class (give the one that defines ``name``, to patch once for all
    subclasses), a module or an object. Idempotent: if our wrapper is already there, even
    under someone else's that was stacked on top later, it is kept (and switched back on).
    Returns whether this call put ours in effect; ``False`` also for what cannot be wrapped
    safely (missing, a class, an unknown descriptor), which is logged at debug level.
    """
    raw, defined_here = _raw(owner, name)
    ours = _find_ours(raw)
    if ours is not None:
        if ours._active:
            return False
        ours._active = True
        return True
    kind = _kind(raw)
    if kind is None:
        debug("not wrapping %s.%s: %s", getattr(owner, "__name__", owner), name, type(raw))
        return False
    installed: Any = (
        ObjectWrapper(raw, wrapper, defined_here)
        if kind == "object"
        else FunctionWrapper(raw, wrapper, kind, defined_here)
    )
    setattr(owner, name, installed)
    return True


def unwrap(owner: Any, name: str) -> bool:
    """Remove our wrapper from ``owner.name``; returns whether the original is back in place.

    If another library wrapped ``owner.name`` after us, its wrapper stays where it is and
    ours, beneath it, is switched off (it calls the original directly): removing ours would
    remove theirs too. Anything else at ``owner.name`` is left alone.
    """
    current, _ = _raw(owner, name)
    ours = _find_ours(current)
    if ours is None:
        return False
    ours._active = False
    if ours is not current:
        debug("%s.%s: our wrapper switched off under another one", owner, name)
        return False
    if ours._defined_here:
        setattr(owner, name, ours.__wrapped__)
    else:
        delattr(owner, name)
    return True


# --- post-import hooks -------------------------------------------------------------------

#: Module name -> callbacks waiting for its import to finish.
_pending: dict[str, list[Callable[[ModuleType], None]]] = {}
#: Watched modules whose code runs right now under :class:`_HookLoader`.
_loading: set[str] = set()
_lock = threading.Lock()


def when_imported(module_name: str, callback: Callable[[ModuleType], None]) -> None:
    """Call ``callback(module)`` once ``module_name`` is imported: now if it already is, else
    right after its code has run, whatever imports it and whenever.

    A callback registered twice for a module not yet imported runs once. Callbacks run in
    :func:`internal_errors`: an exception in one never reaches the host's import. A module
    imported again (removed from ``sys.modules``, or reloaded) does not run them again.
    Modules that cannot be watched (namespace packages, loaders without ``exec_module``) are
    imported as usual, without the callbacks (logged at debug level).
    """
    with _lock:
        module = sys.modules.get(module_name)
        if module is None or module_name in _loading:
            waiting = _pending.setdefault(module_name, [])
            if callback not in waiting:
                waiting.append(callback)
            if _watcher not in sys.meta_path:
                sys.meta_path.insert(0, _watcher)
            return
    _run(module_name, module, [callback])


def _run(
    module_name: str, module: ModuleType, callbacks: list[Callable[[ModuleType], None]]
) -> None:
    for callback in callbacks:
        with internal_errors(f"post-import hook for {module_name}"):
            callback(module)


class _ImportWatcher:
    """The ``sys.meta_path`` entry: passes on at once for any module nobody waits for; for a
    watched one, asks the finders after it and wraps the loader of the spec they return."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        """``None`` (not ours to find), or the next finders' spec with a hooking loader."""
        if fullname not in _pending:
            return None
        meta_path = sys.meta_path
        after = meta_path[meta_path.index(self) + 1 :] if self in meta_path else meta_path
        for finder in after:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        with internal_errors("post-import watch"):
            loader = spec.loader
            if isinstance(loader, _HookLoader):
                return spec
            if loader is None or not hasattr(loader, "exec_module"):
                debug("cannot watch the import of %s (loader %r)", fullname, loader)
                return spec
            spec.loader = _HookLoader(loader, fullname)
        return spec


class _HookLoader:
    """Wraps a watched module's loader: runs the module's code, then the waiting callbacks.

    The module's ``__loader__`` and ``__spec__.loader`` are the original loader again before
    its code runs; any other loader attribute is the original's.
    """

    def __init__(self, loader: Any, name: str) -> None:
        self.loader = loader
        self.name = name

    def create_module(self, spec: Any) -> Any:
        """The original loader's ``create_module``, if it has one."""
        create = getattr(self.loader, "create_module", None)
        return None if create is None else create(spec)

    def exec_module(self, module: ModuleType) -> None:
        """Run the module, then the callbacks waiting for it (not if the module raised)."""
        name = self.name
        with internal_errors("post-import watch"):
            if getattr(module, "__loader__", None) is self:
                module.__loader__ = self.loader
            spec = getattr(module, "__spec__", None)
            if spec is not None and spec.loader is self:
                spec.loader = self.loader
        with _lock:
            _loading.add(name)
        try:
            self.loader.exec_module(module)
        finally:
            with _lock:
                _loading.discard(name)
        with _lock:
            callbacks = _pending.pop(name, [])
        _run(name, sys.modules.get(name, module), callbacks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["loader"], name)


_watcher = _ImportWatcher()
