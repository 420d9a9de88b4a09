"""``--checkpoint latest|best|step-N``: which checkpoint of a run ``evaluate``, ``generate``
and ``export`` load.

``latest`` is the one a resume would take, ``best`` the one ``checkpoints/best``
names (a run trained with ``training.keep_best``), ``step-N`` that step's
folder. A choice the run cannot honour is one paragraph naming the
checkpoints it has.
"""

from __future__ import annotations

import re
from pathlib import Path

LATEST, BEST = "latest", "best"
_STEP = re.compile(r"^step-(\d+)$")


class CheckpointChoiceError(ValueError):
    """``--checkpoint`` names a checkpoint the run does not have (exit 2)."""


def parse_checkpoint_choice(text: str) -> str:
    """``latest``, ``best`` or ``step-N``, as given; anything else is a ``ValueError``."""
    if text in (LATEST, BEST) or _STEP.match(text):
        return text
    raise ValueError(f"{text!r} is not a checkpoint: use latest, best or step-N (e.g. step-200)")


def chosen_checkpoint(run_dir: Path, choice: str) -> Path:
    """The checkpoint directory ``choice`` names in ``run_dir``; a missing one is an error."""
    from codex_ml.training.checkpoint import (
        BEST_FILE,
        CHECKPOINTS_DIR,
        find_best_checkpoint,
        resolve_checkpoint,
    )

    root = run_dir / CHECKPOINTS_DIR
    if choice == LATEST:
        return resolve_checkpoint(run_dir)
    if choice == BEST:
        best = find_best_checkpoint(run_dir)
        if best is not None:
            return best
        why = (
            f"{root / BEST_FILE} names no complete checkpoint"
            if (root / BEST_FILE).exists()
            else "it was trained without training.keep_best, so it kept only its newest checkpoints"
        )
        raise CheckpointChoiceError(
            f"--checkpoint best: no best checkpoint in {run_dir}: {why}. Use --checkpoint latest "
            f"or --checkpoint step-N ({_available(root)}), or train with "
            "training.keep_best=eval_loss to keep one."
        )
    step_dir = root / choice
    if not step_dir.is_dir():
        raise CheckpointChoiceError(
            f"--checkpoint {choice}: {run_dir} has no checkpoint {choice} ({_available(root)}). "
            "Pick one of those, or --checkpoint latest."
        )
    return step_dir


def _available(root: Path) -> str:
    steps = sorted(
        (int(m.group(1)), m.group(0))
        for m in (_STEP.match(p.name) for p in (root.iterdir() if root.is_dir() else ()))
        if m
    )
    return "it has " + ", ".join(name for _, name in steps) if steps else "it has none"
