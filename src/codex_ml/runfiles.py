"""The names a run keeps at the top of its run directory: one list, for writers and checks.

A run's writers (``run/outputs.py``, ``run/invocation.py``, ``run/rundir.py``,
``run/runlog.py``, ``run/evaluate.py``, the trainer's checkpoints and the
tracker callbacks) each own some of these names; anything else that writes
in a run directory (a callback's output file, say) must keep clear of all of
them, or it replaces the lock (and a second run trains alongside), truncates
the history a resume appends to, or stops checkpoints being saved.
:func:`clash` says why a name may not be used. A leaf: it imports nothing.
"""

from __future__ import annotations

LOCK = ".lock"  # run/rundir.py: held while the run is live
RECORD_DIR = ".hydra"  # run/invocation.py: how the run was invoked (resume reads it)
CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
SAMPLES = "samples.jsonl"
PLOT = "loss_curve.png"
LOG = "train.log"
CHECKPOINTS = "checkpoints"  # codex_ml.training.checkpoint
EVALUATION = "evaluation.json"  # codex-ml evaluate's report
TENSORBOARD = "tensorboard"  # the tensorboard callback's event files
WANDB = "wandb"
MLRUNS = "mlruns"

#: Every name a run (or a built-in tracker) writes at the top of its run directory.
RUN_DIR_NAMES: tuple[str, ...] = (
    LOCK,
    RECORD_DIR,
    CONFIG,
    METRICS,
    SUMMARY,
    SAMPLES,
    PLOT,
    LOG,
    CHECKPOINTS,
    EVALUATION,
    TENSORBOARD,
    WANDB,
    MLRUNS,
)
_SEPARATORS = ("/", "\\", "\0")


def clash(name: object) -> str | None:
    """Why ``name`` cannot be a file of its own at the top of a run directory, or None if it can.

    Refused: anything but a plain file name (a path separator, ``.``,
    ``..``), a hidden name (codex-ml's lock and temporary files are hidden),
    and every name in :data:`RUN_DIR_NAMES` (in any letter case, which some
    disks do not tell apart).
    """
    if not isinstance(name, str) or not name.strip():
        return "is not a file name"
    if any(sep in name for sep in _SEPARATORS) or name in (".", ".."):
        return "is not a plain file name: it must not leave the run directory or name a folder"
    if name.startswith("."):
        return "is a hidden name, and hidden names in a run directory are codex-ml's own"
    taken = {own.casefold(): own for own in RUN_DIR_NAMES}
    if name.casefold() in taken:
        return f"is the run's own {taken[name.casefold()]}"
    return None
