"""The built-in catalogue, as a hook plugin like any other.

Every entry is a :class:`~codex_ml.plugins.LazyFactory`: listing the catalogue
imports none of its components, and the first ``get`` of a key imports only
the module behind it (and torch or transformers only if that module needs
them). The table itself is :mod:`codex_ml.catalogue.table`.
"""

from __future__ import annotations

from collections.abc import Callable

from codex_ml.catalogue.table import CATALOGUE
from codex_ml.plugins import KINDS, Kind, LazyFactory, hookimpl

__all__ = ["CATALOGUE"]  # re-exported: the table lives in codex_ml.catalogue.table


def _entries(kind: str) -> dict[str, LazyFactory]:
    return {key: LazyFactory(target) for key, target in CATALOGUE.get(kind, {}).items()}


def _make_hook(kind: Kind) -> Callable[[], dict[str, LazyFactory]]:
    def hook() -> dict[str, LazyFactory]:
        return _entries(kind.name)

    hook.__name__ = hook.__qualname__ = kind.hook_name
    hook.__doc__ = f"The catalogue's {kind.plural}."
    return hookimpl(hook)


# One registration hook per row of the table of kinds, as the hookspecs are made.
for _kind in KINDS:
    globals()[_kind.hook_name] = _make_hook(_kind)
del _kind
