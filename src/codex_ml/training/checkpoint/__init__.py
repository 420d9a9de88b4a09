"""Crash-safe training checkpoints: write, find, verify and load.

Layout of a run's output directory::

    checkpoints/
        step-200/
            model.safetensors   weights only (tied weights stored once)
            state.pt            optimizer, step, tokens seen, sampler and RNG states
            meta.json           trainer config, model class, sizes and sha256 of the files
        step-400/ ...
        latest                  the name of the newest checkpoint ("step-400")
        best                    with training.keep_best: that of the best evaluation

:mod:`.layout` names these and finds the checkpoint to resume from (``latest``,
``step-<N>``, the newest complete one); :mod:`.save` writes one whole, then
``latest`` (and ``best``), then prunes, sparing the best; :mod:`.best` reads and
writes the ``best`` pointer; :mod:`.load` checks one and loads it, never
half-way; :mod:`.rng` captures and restores the random state a resume needs.
"""

from codex_ml.training.checkpoint.best import BEST_FILE, find_best_checkpoint
from codex_ml.training.checkpoint.layout import (
    CHECKPOINTS_DIR,
    FORMAT_VERSION,
    LATEST_FILE,
    META_FILE,
    MODEL_FILE,
    STATE_FILE,
    find_latest_checkpoint,
    resolve_checkpoint,
)
from codex_ml.training.checkpoint.load import (
    Checkpoint,
    check_resume_state,
    load_checkpoint,
    read_weights,
)
from codex_ml.training.checkpoint.rng import capture_rng_state, restore_rng_state
from codex_ml.training.checkpoint.save import save_checkpoint

__all__ = [
    "BEST_FILE",
    "CHECKPOINTS_DIR",
    "FORMAT_VERSION",
    "LATEST_FILE",
    "META_FILE",
    "MODEL_FILE",
    "STATE_FILE",
    "Checkpoint",
    "capture_rng_state",
    "check_resume_state",
    "find_best_checkpoint",
    "find_latest_checkpoint",
    "load_checkpoint",
    "read_weights",
    "resolve_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
]
