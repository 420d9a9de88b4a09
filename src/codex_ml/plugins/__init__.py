"""What a plugin author imports: the ``hookimpl`` marker, and the hook contract.

A hook plugin is a module with ``@hookimpl`` functions, declared in the
``codex_ml.plugins`` entry-point group::

    from codex_ml.plugins import hookimpl

    @hookimpl
    def codex_ml_register_metrics():
        return {"toy_metric": build_toy_metric}   # key -> factory

The hookspecs are in :mod:`codex_ml.plugins.hookspecs`, the table of kinds in
:mod:`codex_ml.plugins.kinds`. This package imports nothing else of codex_ml.

``hookimpl`` and ``hookspec`` are pluggy markers, so they are imported on
first access: listing the registries imports this package, and needs pluggy
only when a hook plugin is installed.
"""

from __future__ import annotations

from codex_ml.plugins.kinds import KINDS, PLUGIN_GROUP, PROJECT_NAME, Kind
from codex_ml.plugins.lazy import LazyFactory

TYPE_CHECKING = False  # typing is not imported on the listing path (~2 ms per process)
if TYPE_CHECKING:
    from typing import Any

    from codex_ml.plugins.markers import hookimpl, hookspec

__all__ = [
    "KINDS",
    "PLUGIN_GROUP",
    "PROJECT_NAME",
    "Kind",
    "LazyFactory",
    "hookimpl",
    "hookspec",
]


def __getattr__(name: str) -> Any:
    if name in ("hookimpl", "hookspec"):
        from codex_ml.plugins import markers

        return getattr(markers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
