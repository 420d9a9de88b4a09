"""Factories named by ``"module:attr"`` and imported only when first called.

A hook plugin that returns ``{"my-model": LazyFactory("my_pkg.model:build")}``
advertises a key without importing the module behind it: listing and
describing the key cost nothing, and the registry imports the target on the
first ``get``. The built-in catalogue uses this for every entry.
"""

from __future__ import annotations

import importlib
import threading

TYPE_CHECKING = False  # typing is not imported on the listing path (~2 ms per process)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["LazyFactory", "load_target"]

_UNRESOLVED = object()


def load_target(value: str) -> Any:
    """Import ``module:attr.path`` (the entry-point value syntax) and return the object."""
    module_name, _, attr_path = value.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for attr in filter(None, attr_path.strip().split(".")):
        obj = getattr(obj, attr)
    return obj


class LazyFactory:
    """A callable stand-in for ``module:attr`` that imports it on first use."""

    __slots__ = ("_lock", "_resolved", "target")
    #: Lets the registry (which does not import this module) keep such entries lazy.
    __codex_ml_lazy__ = True

    target: str  # "module:attr"

    def __init__(self, target: str) -> None:
        module, sep, attr = target.partition(":")
        if not (isinstance(target, str) and sep and module.strip() and attr.strip()):
            raise ValueError(f"LazyFactory needs a 'module:attr' target, got {target!r}")
        self.target = f"{module.strip()}:{attr.strip()}"
        self._resolved: Any = _UNRESOLVED
        # Re-entrant: a target whose import calls this factory gets an import error, not a hang.
        self._lock = threading.RLock()

    def resolve(self) -> Any:
        """Import the target (once, even under concurrent calls) and return it."""
        if self._resolved is _UNRESOLVED:
            with self._lock:
                if self._resolved is _UNRESOLVED:
                    self._resolved = load_target(self.target)
        return self._resolved

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    @property
    def __signature__(self) -> Any:
        import inspect

        return inspect.signature(self.resolve())

    def __repr__(self) -> str:
        return f"LazyFactory({self.target!r})"
