"""Which checkpoint of a run to export, and the run's tokenizer and model with its weights."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_ml.export.errors import ExportError

#: ``--checkpoint`` values: the newest, the best (once runs keep one), or one step.
LATEST, BEST = "latest", "best"
_STEP = re.compile(r"^step-(\d+)$")


def parse_checkpoint_choice(text: str) -> str:
    """``latest``, ``best`` or ``step-N``, as given; anything else is a ``ValueError``."""
    if text in (LATEST, BEST) or _STEP.match(text):
        return text
    raise ValueError(f"{text!r} is not a checkpoint: use latest, best or step-N (e.g. step-200)")


@dataclass(frozen=True)
class RunSource:
    """A run restored for export: where it is, which checkpoint, and what it built."""

    run_dir: Path
    checkpoint: Path
    tokenizer: Any
    model: Any


def load_source(
    target: str | Path, choice: str | None = None, config_dirs: Sequence[str] = ()
) -> RunSource:
    """The run at ``target`` (as ``generate`` takes it) with the chosen checkpoint loaded.

    ``choice`` None uses what ``target`` names (the latest checkpoint of a run
    directory, or the one step-N directory given); otherwise it is looked up in
    the run's own ``checkpoints/``.
    """
    from codex_ml.run.restore import compose_run, locate, restore_model

    where = locate(target)
    checkpoint = where.checkpoint if choice is None else chosen_checkpoint(where.run_dir, choice)
    config = compose_run(where.run_dir, [], config_dirs)
    _, tokenizer, model = restore_model(config, checkpoint)
    return RunSource(where.run_dir, checkpoint, tokenizer, model)


def chosen_checkpoint(run_dir: Path, choice: str) -> Path:
    """The checkpoint directory ``choice`` names in ``run_dir``; a missing one is an error."""
    from codex_ml.training.checkpoint import CHECKPOINTS_DIR, resolve_checkpoint

    root = run_dir / CHECKPOINTS_DIR
    if choice == BEST:
        raise ExportError(
            f"--checkpoint best: no best checkpoint in {run_dir}; this run keeps only its "
            f"latest checkpoints. Use --checkpoint latest or --checkpoint step-N "
            f"({_available(root)})."
        )
    if choice == LATEST:
        return resolve_checkpoint(run_dir)
    step_dir = root / choice
    if not step_dir.is_dir():
        raise ExportError(
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
