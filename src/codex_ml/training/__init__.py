"""Training: the ``offline:functional`` trainer, its checkpoints and data parallelism.

What a third-party trainer uses: :func:`save_checkpoint` (checkpoints that
``evaluate``, ``generate`` and ``training.resume`` read) and :class:`StopTraining`
(what a callback raises to end a run early).

Importing this package is cheap: the names below are resolved on first use,
so ``from codex_ml.training import CheckpointError`` does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from codex_ml.training.errors import (
    CheckpointError,
    CheckpointWriteError,
    StopTraining,
    TrainingDivergedError,
)

if TYPE_CHECKING:
    from codex_ml.training.checkpoint import (
        Checkpoint,
        find_latest_checkpoint,
        load_checkpoint,
        save_checkpoint,
    )
    from codex_ml.training.functional import FunctionalTrainer
    from codex_ml.training.result import TrainResult

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointWriteError",
    "FunctionalTrainer",
    "StopTraining",
    "TrainResult",
    "TrainingDivergedError",
    "find_latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]

_LAZY = {
    "Checkpoint": "codex_ml.training.checkpoint",
    "find_latest_checkpoint": "codex_ml.training.checkpoint",
    "load_checkpoint": "codex_ml.training.checkpoint",
    "save_checkpoint": "codex_ml.training.checkpoint",
    "FunctionalTrainer": "codex_ml.training.functional",
    "TrainResult": "codex_ml.training.result",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'codex_ml.training' has no attribute {name!r}")
