"""The hook specifications: registration hooks per kind, and the run's lifecycle hooks.

Every hook takes no argument and returns a mapping of key -> factory, or
``None`` when the plugin has nothing of that kind::

    from codex_ml.plugins import hookimpl

    @hookimpl
    def codex_ml_register_metrics():
        return {"toy_metric": build_toy_metric}

The registration specs are generated from :data:`codex_ml.plugins.kinds.KINDS`
so they can never drift apart.

The lifecycle hooks are called during ``codex-ml train``, on every rank, from
the same hook plugin modules; their arguments are those of
:data:`codex_ml.plugins.lifecycle.EVENTS` (an implementation may name fewer).
What they return is ignored. One that raises is reported once, naming its
plugin and distribution, and is not called again in that run; raising
``codex_ml.training.StopTraining`` ends the run early on purpose instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from codex_ml.plugins.kinds import KINDS, Kind
from codex_ml.plugins.markers import hookspec

__all__ = [
    *(kind.hook_name for kind in KINDS),
    "codex_ml_checkpoint",
    "codex_ml_evaluate",
    "codex_ml_log",
    "codex_ml_train_end",
    "codex_ml_train_start",
]


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


# -- lifecycle hooks: ``run`` is a codex_ml.plugins.lifecycle.RunInfo ---------------------------


@hookspec
def codex_ml_train_start(run: Any) -> None:
    """The run is about to train: its components are built and ``config.yaml`` is written."""


@hookspec
def codex_ml_log(run: Any, record: Mapping[str, Any]) -> None:
    """A log record: ``step``, ``loss``, ``lr``, ``tokens_per_s``, ``elapsed``, ``tokens_seen``...

    The same numbers as the row ``metrics.jsonl`` gets for it.
    """


@hookspec
def codex_ml_evaluate(run: Any, metrics: Mapping[str, Any]) -> None:
    """An evaluation: ``step`` and the numbers (``eval_loss``, ``eval_ppl``...)."""


@hookspec
def codex_ml_checkpoint(run: Any, path: Any) -> None:
    """A checkpoint is complete on disk at ``path`` (a ``pathlib.Path``); rank 0 only."""


@hookspec
def codex_ml_train_end(run: Any, summary: Mapping[str, Any]) -> None:
    """Once per run, whatever its ``summary["status"]``: completed, stopped, interrupted, failed.

    On rank 0 ``summary`` is what ``summary.json`` holds (written before this
    call); other ranks get the part of it they know (status, steps, metrics).
    """
