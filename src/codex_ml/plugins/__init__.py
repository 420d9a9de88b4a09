"""What a plugin author imports: the ``hookimpl`` marker, and the hook contract.

A hook plugin is a module with ``@hookimpl`` functions, declared in the
``codex_ml.plugins`` entry-point group::

    from codex_ml.plugins import hookimpl

    @hookimpl
    def codex_ml_register_metrics():
        return {"toy_metric": build_toy_metric}   # key -> factory

The hookspecs are in :mod:`codex_ml.plugins.hookspecs`, the table of kinds in
:mod:`codex_ml.plugins.kinds`. This package imports nothing else of codex_ml.
"""

from __future__ import annotations

from codex_ml.plugins.kinds import KINDS, PLUGIN_GROUP, PROJECT_NAME, Kind
from codex_ml.plugins.lazy import LazyFactory
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
