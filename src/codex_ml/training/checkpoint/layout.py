"""A run's checkpoints on disk: their names, and finding the one to resume from.

Which one that is (:func:`find_latest_checkpoint`): the one ``latest`` names,
unless a complete ``step-<N>`` finished later overtook it (``latest`` is
replaced after its checkpoint, so a full disk can leave it lagging); without
``latest``, the highest-numbered complete one. "Complete" means all three
files are there; whether they are intact is checked on loading. A checkpoint
whose ``meta.json`` records NaN or infinite weights is passed over: the newest
finite one before it is offered instead.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from codex_ml.regularfile import open_regular, read_regular, read_regular_text
from codex_ml.training.errors import CheckpointError

FORMAT_VERSION = 1
CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "latest"
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.pt"
META_FILE = "meta.json"
#: The most a ``meta.json`` (the trainer's config, sizes, hashes) or ``latest`` can hold.
META_LIMIT = 16 << 20
LATEST_LIMIT = 4096
#: A checkpoint being written is ``.tmp-step-<N>-<random>/`` until renamed ...
STAGING_PREFIX = ".tmp-"
#: ... and one being replaced or deleted goes to ``.trash-step-<N>-<random>/step-<N>/``.
ASIDE_PREFIX = ".trash-"
STEP_DIR = re.compile(r"^step-(\d+)$")


def step_dir_name(step: int) -> str:
    """``step-<step>``: the folder of the checkpoint written after ``step`` steps."""
    return f"step-{step}"


def step_dirs(root: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``step-<N>`` directory under ``root``, oldest first.

    A link named ``step-<N>`` is not one: codex-ml never writes one.
    """
    found = []
    for path in root.iterdir() if root.is_dir() else ():
        match = STEP_DIR.match(path.name)
        if match and path.is_dir() and not path.is_symlink():
            found.append((int(match.group(1)), path))
    return sorted(found)


def is_complete(path: Path) -> bool:
    """All three files of a checkpoint are in ``path`` (intact or not)."""
    return all((path / name).is_file() for name in (MODEL_FILE, STATE_FILE, META_FILE))


def has_finite_weights(path: Path) -> bool:
    """False when the checkpoint's ``meta.json`` records NaN or infinite weights, else True.

    Unreadable or silent on it (an older checkpoint): True, and loading it
    checks the weights themselves.
    """
    try:
        meta = json.loads(read_regular(path / META_FILE, limit=META_LIMIT))
    except (OSError, ValueError):
        return True
    return not (isinstance(meta, dict) and meta.get("finite_weights") is False)


def sha256_of(path: Path) -> str:
    """The sha256 that ``meta.json`` records for each file of a checkpoint (a regular file)."""
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _written_at(step_dir: Path) -> int:
    """When a checkpoint was finished: its ``meta.json`` is the last file written."""
    return (step_dir / META_FILE).stat().st_mtime_ns


def find_latest_checkpoint(path: str | Path) -> Path | None:
    """The newest complete checkpoint under a run directory or its ``checkpoints/``, else None.

    ``latest`` is updated only after its checkpoint is complete, so it can lag
    (a full disk can refuse the pointer after the checkpoint went in) but
    never lead. A complete ``step-<N>`` with a higher step that was finished no
    earlier than the one ``latest`` names is therefore newer and wins; an older
    higher-numbered one (left by an earlier run in the same directory) does
    not. Without ``latest`` (or when it names a directory that is gone) the
    highest-numbered complete ``step-<N>`` wins, so a write interrupted before
    its rename is never picked; that search includes a checkpoint moved aside
    to be replaced, should the replacing process have been killed between its
    two renames.
    """
    path = Path(path)
    root = path if path.name == CHECKPOINTS_DIR else path / CHECKPOINTS_DIR
    complete = [(step, step_dir) for step, step_dir in step_dirs(root) if _usable(step_dir)]
    named = _named_by_pointer(root)
    if named is not None and not is_complete(named):
        return named  # damaged after it was written: loading it names the file at fault
    if named is not None:
        named_step, named_at = int(named.name.split("-")[1]), _written_at(named)
        newer = [d for step, d in complete if step > named_step and _written_at(d) >= named_at]
        if newer or has_finite_weights(named):
            return newer[-1] if newer else named
        # Its weights went NaN: the newest finite one this run wrote before it.
        older = [d for step, d in complete if step < named_step]
        return older[-1] if older else None
    aside = [pair for trash in root.glob(f"{ASIDE_PREFIX}step-*") for pair in step_dirs(trash)]
    # On a tie the checkpoint in place beats the copy moved aside (True sorts last).
    ranked = sorted(
        (step, step_dir.parent == root, str(step_dir))
        for step, step_dir in [*complete, *aside]
        if _usable(step_dir)
    )
    return Path(ranked[-1][2]) if ranked else None


def _usable(step_dir: Path) -> bool:
    """Complete, and not recorded as holding NaN or infinite weights."""
    return is_complete(step_dir) and has_finite_weights(step_dir)


def non_finite_checkpoints(path: str | Path) -> list[Path]:
    """The complete checkpoints under ``path`` whose ``meta.json`` records non-finite weights."""
    path = Path(path)
    root = path if path.name == CHECKPOINTS_DIR else path / CHECKPOINTS_DIR
    return [d for _, d in step_dirs(root) if is_complete(d) and not has_finite_weights(d)]


def _named_by_pointer(root: Path) -> Path | None:
    """The ``step-<N>`` directory that ``root/latest`` names, if it exists, else None."""
    pointer = root / LATEST_FILE
    try:
        name = read_regular_text(pointer, limit=LATEST_LIMIT).strip()
    except (OSError, UnicodeDecodeError):  # missing, or not a file codex-ml wrote: ignored
        return None
    step_dir = root / name
    if not STEP_DIR.match(name) or step_dir.is_symlink() or not step_dir.is_dir():
        return None
    return step_dir


def resolve_checkpoint(path: str | Path) -> Path:
    """The ``step-<N>`` directory that ``path`` (run dir, checkpoints dir or step dir) names."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"Checkpoint path {path} does not exist.", path=path)
    if (path / META_FILE).exists() or STEP_DIR.match(path.name):
        return path
    found = find_latest_checkpoint(path)
    skipped = non_finite_checkpoints(path) if found is None else []
    if skipped:
        raise CheckpointError(
            f"No checkpoint under {path} can be used: {', '.join(d.name for d in skipped)} "
            "hold NaN or infinite weights (training had diverged when they were saved). "
            "Start the run again with a lower lr or a tighter grad_clip.",
            path=path,
        )
    if found is None:
        raise CheckpointError(
            f"No checkpoint found under {path}: expected {CHECKPOINTS_DIR}/step-<N>/ holding "
            f"{MODEL_FILE}, {STATE_FILE} and {META_FILE}. Pass a run's output_dir, its "
            f"{CHECKPOINTS_DIR}/ directory or one step-<N> directory.",
            path=path,
        )
    return found
