"""Benchmark tasks on a codex-ml model: lm-evaluation-harness through an ``LM`` adapter.

Needs codex-ml's ``eval`` extra (``pip install "codex-ml[eval]"``: lm-eval);
importing this package is free, and lm-eval is imported when a task runs.
:func:`run_harness_tasks` runs tasks offline and returns ``{task: {metric:
value}}``; :class:`CodexLM` (in :mod:`.lm_eval_adapter`) is the adapter, for
use with ``lm_eval.simple_evaluate`` directly.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "CodexLM": "codex_ml.evaluation.lm_eval_adapter",
    "require_lm_eval": "codex_ml.evaluation.harness",
    "run_harness_tasks": "codex_ml.evaluation.harness",
    "task_table": "codex_ml.evaluation.harness",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
