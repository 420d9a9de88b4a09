"""``checkpoints/best``: the pointer to the checkpoint of the best evaluation.

It is written as ``latest`` is (the name of a ``step-<N>`` folder, replaced
atomically, never through a link), only after its checkpoint is complete,
and pruning never removes the checkpoint it names. A run writes it when it
keeps its best checkpoint (``training.keep_best=METRIC``); a resume still
starts from ``latest``.
"""

from __future__ import annotations

from pathlib import Path

from codex_ml import fsio
from codex_ml.training.checkpoint.layout import CHECKPOINTS_DIR, STEP_DIR, is_complete

BEST_FILE = "best"
#: The pointer holds one folder name; anything longer is not one codex-ml wrote.
_POINTER_BYTES = 64


def best_pointer_target(root: Path) -> Path | None:
    """The ``step-<N>`` folder ``root/best`` names (``root`` is ``checkpoints/``), else None.

    None when there is no pointer, it is a link, or it names something that
    is not a ``step-<N>`` folder of ``root``; the folder may be incomplete.
    """
    pointer = root / BEST_FILE
    if pointer.is_symlink() or not pointer.is_file():
        return None
    try:
        with open(pointer, "rb") as handle:
            name = handle.read(_POINTER_BYTES).decode().strip()
    except (OSError, UnicodeDecodeError):
        return None
    step_dir = root / name
    if not STEP_DIR.match(name) or step_dir.is_symlink() or not step_dir.is_dir():
        return None
    return step_dir


def find_best_checkpoint(path: str | Path) -> Path | None:
    """The complete checkpoint ``checkpoints/best`` names under a run directory, else None."""
    path = Path(path)
    root = path if path.name == CHECKPOINTS_DIR else path / CHECKPOINTS_DIR
    step_dir = best_pointer_target(root)
    return step_dir if step_dir is not None and is_complete(step_dir) else None


def write_best_pointer(root: Path, step_dir: Path) -> None:
    """Point ``root/best`` at ``step_dir`` (a complete checkpoint in ``root``), atomically."""
    fsio.write_atomic(root / BEST_FILE, f"{step_dir.name}\n", durable=True)
