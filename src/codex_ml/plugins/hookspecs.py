"""The hook specifications: one ``codex_ml_register_<kinds>`` hook per component kind.

Every hook takes no argument and returns a mapping of key -> factory, or
``None`` when the plugin has nothing of that kind::

    from codex_ml.plugins import hookimpl

    @hookimpl
    def codex_ml_register_metrics():
        return {"toy_metric": build_toy_metric}

The six specs are generated from :data:`codex_ml.plugins.kinds.KINDS` so they
can never drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from codex_ml.plugins.kinds import KINDS, Kind
from codex_ml.plugins.markers import hookspec

__all__ = [kind.hook_name for kind in KINDS]


def _make_spec(kind: Kind) -> Callable[[], Mapping[str, Any] | None]:
    def spec() -> Mapping[str, Any] | None:
        raise NotImplementedError  # never called: pluggy only reads the signature

    spec.__name__ = spec.__qualname__ = kind.hook_name
    spec.__doc__ = (
        f"Return a mapping of {kind.name} key -> factory (or None). "
        f"``get_{kind.name}(key, **kwargs)`` calls the factory with the kwargs."
    )
    return hookspec(spec)


for _kind in KINDS:
    globals()[_kind.hook_name] = _make_spec(_kind)
del _kind
