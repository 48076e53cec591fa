"""Framework integrations: one module per library, each with ``instrument``/``uninstrument``.

Patches are applied when the library is imported (post-import hooks of :mod:`..patching`),
whatever the import order, and never import the library themselves. Each patch decides on
every call whether to record (``session.current()``), so turning telemetry off needs no
unpatching.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..._internal import internal_errors
from ..patching import unwrap, when_imported, wrap_function


class Integration:
    """Base: lazy patching on import, symmetric removal of exactly what we wrapped."""

    #: The module whose import triggers :meth:`patch`.
    module_name = ""

    def __init__(self) -> None:
        self._enabled = False
        self._patched: list[tuple[Any, str]] = []

    @property
    def instrumented(self) -> bool:
        """Whether the patches are (or will be, on import) in place."""
        return self._enabled

    def instrument(self) -> None:
        """Patch now if the library is imported, else as soon as it is (idempotent)."""
        if self._enabled:
            return
        self._enabled = True
        when_imported(self.module_name, self._on_import)  # now if imported; one hook if not

    def uninstrument(self) -> None:
        """Remove every wrapper this integration installed (one that another library has
        wrapped since stays under theirs, switched off: see :func:`..patching.unwrap`)."""
        self._enabled = False
        for owner, name in reversed(self._patched):
            with internal_errors(f"uninstrument {self.module_name}"):
                unwrap(owner, name)
        self._patched.clear()

    def _on_import(self, module: Any) -> None:
        if not self._enabled or self._patched:
            return
        with internal_errors(f"instrument {self.module_name}"):
            self.patch(module)

    def patch(self, module: Any) -> None:
        """Install the wrappers; subclasses call :meth:`wrap` for each target."""
        raise NotImplementedError

    def wrap(self, owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
        """Wrap ``owner.name`` (on the class that defines it) unless already wrapped by us."""
        if wrap_function(owner, name, wrapper):
            self._patched.append((owner, name))


def defining_class(cls: type, name: str) -> type:
    """The class in ``cls``'s MRO whose own dict holds ``name`` (patch there, once)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass
    return cls
