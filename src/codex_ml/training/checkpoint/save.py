"""Saving a checkpoint: the folder published whole, then ``latest``, then pruning.

A checkpoint's three files are written into a temporary folder and renamed to
``step-<N>/`` in one step (:func:`codex_ml.publish.publish_folder`); only then
is ``latest`` replaced (write + fsync + ``os.replace``) and older checkpoints
pruned. A process killed at any moment therefore leaves either the old or the
new checkpoint complete, and ``latest`` always names a complete one.

Nothing here writes through a link planted in the run directory (see
:mod:`codex_ml.fsio`): ``checkpoints/`` must be a real directory and ``latest``
is refused if it is a link. A write that fails (a full disk) removes its
temporary folder and raises :class:`CheckpointWriteError` naming the folder
and the previous checkpoint, which it never touched.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codex_ml import fsio, publish
from codex_ml.models.parameters import count_parameters
from codex_ml.training.checkpoint import trainable
from codex_ml.training.checkpoint.best import BEST_FILE, best_pointer_target, write_best_pointer
from codex_ml.training.checkpoint.layout import (
    ASIDE_PREFIX,
    CHECKPOINTS_DIR,
    FORMAT_VERSION,
    LATEST_FILE,
    META_FILE,
    MODEL_FILE,
    STAGING_PREFIX,
    STATE_FILE,
    find_latest_checkpoint,
    sha256_of,
    step_dir_name,
    step_dirs,
)
from codex_ml.training.compile import uncompiled
from codex_ml.training.errors import CheckpointWriteError

_RESUME = "resume the run (training.resume=<run dir> on the command line, resume_from= in Python)."


def save_checkpoint(
    output_dir: str | Path,
    *,
    step: int,
    model: nn.Module,
    state: Mapping[str, Any],
    config: Mapping[str, Any],
    keep: int,
    best: bool = False,
) -> Path:
    """Write ``output_dir/checkpoints/step-<step>/`` atomically and return its path.

    ``state`` must hold only tensors and plain containers (it is read back with
    ``weights_only=True``); ``config`` is the trainer configuration recorded in
    ``meta.json``. Keeps the newest ``keep`` checkpoints. Raises
    :class:`CheckpointWriteError` when the disk refuses the write, having
    removed the partial one and left every earlier checkpoint as it was. A
    ``torch.compile``d model is saved as the module it wraps (no ``_orig_mod.``).
    With ``best`` it is also named by ``checkpoints/best``, which pruning spares.
    """
    model = uncompiled(model)
    root = fsio.make_dir(Path(output_dir) / CHECKPOINTS_DIR)
    fsio.refuse_link(root / LATEST_FILE)  # before anything is written, not after
    fsio.refuse_link(root / BEST_FILE)
    final = root / step_dir_name(step)
    try:
        # A rerun into the same output_dir replaces its step-<N>: the old one is moved
        # aside, and deleted only once the new one is in place.
        publish.publish_folder(
            final,
            lambda folder: _write_files(folder, step=step, model=model, state=state, config=config),
            staging_prefix=f"{STAGING_PREFIX}{final.name}-",
            aside_prefix=f"{ASIDE_PREFIX}{final.name}-",
        )
    except fsio.UnsafePathError:
        raise
    except Exception as exc:
        cause = exc.cause if isinstance(exc, publish.FileWriteFailed) else exc
        raise _write_failed(root, final, exc) from cause
    try:
        fsio.write_atomic(root / LATEST_FILE, f"{final.name}\n", durable=True)
    except fsio.UnsafePathError:
        raise
    except OSError as exc:
        raise _pointer_failed(root, final, exc) from exc
    if best:
        write_best_pointer(root, final)
    _prune(root, keep=keep, current=final)
    return final


def _write_files(
    folder: Path,
    *,
    step: int,
    model: nn.Module,
    state: Mapping[str, Any],
    config: Mapping[str, Any],
) -> None:
    """The three files of a checkpoint, fsynced, ``meta.json`` (with their hashes) last.

    ``folder`` is fresh and private (0700): nothing can be planted in it, so the
    libraries may open their files by name. A failure names the file.
    """
    from codex_ml.config.secrets import redact, secret_values

    with publish.writing(MODEL_FILE):  # with an adapter: only what it trains
        trainable.save_weights(model, folder / MODEL_FILE)
    with publish.writing(STATE_FILE):
        torch.save(dict(state), folder / STATE_FILE)
    meta = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "parameters": count_parameters(model),
        "trainer": redact(dict(config), secret_values(None)),  # never read back: no secrets
        **trainable.meta_entries(model),
        "files": {name: _fingerprint(folder / name) for name in (MODEL_FILE, STATE_FILE)},
        # A resume passes over a checkpoint whose weights went NaN (see layout).
        "finite_weights": _finite(model),
    }
    with publish.writing(META_FILE):
        fsio.write_atomic(
            folder / META_FILE, json.dumps(meta, indent=2, default=str).encode(), durable=True
        )


def _finite(model: nn.Module) -> bool:
    """Whether every floating-point weight and buffer of ``model`` is finite."""
    with torch.no_grad():
        return all(
            bool(torch.isfinite(tensor).all())
            for tensor in model.state_dict().values()
            if tensor.is_floating_point()
        )


def _fingerprint(path: Path) -> dict[str, Any]:
    """Size and sha256 of a file, after making sure it is on disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
    return {"bytes": path.stat().st_size, "sha256": sha256_of(path)}


def _write_failed(root: Path, final: Path, exc: BaseException) -> CheckpointWriteError:
    previous = find_latest_checkpoint(root)
    if previous is not None:
        kept = (
            f"The previous checkpoint, {previous}, is intact (nothing of it was touched) and "
            "a resume picks it up; the partial one was removed."
        )
    else:
        kept = "No earlier checkpoint exists in it; the partial one was removed."
    message = publish.write_failed_message(
        f"Could not write checkpoint {final.name} in {root}",
        exc,
        disk=root,
        kept=kept,
        remedy="Free some space, or lower keep_checkpoints, or move the run to a larger disk, "
        f"then {_RESUME}",
    )
    return CheckpointWriteError(message, path=root, previous=previous)


def _pointer_failed(root: Path, final: Path, exc: BaseException) -> CheckpointWriteError:
    return CheckpointWriteError(
        f"Checkpoint {final} is complete, but {root / LATEST_FILE} could not be updated to "
        f"name it: {publish.describe_failure(exc)} ({publish.space_left(root)}; the disk is "
        f"probably full). Nothing is lost: a resume picks the newest complete checkpoint, "
        f"{final.name}, whatever {LATEST_FILE} says. Free some space, then {_RESUME}",
        path=root,
        previous=final,
    )


def _prune(root: Path, *, keep: int, current: Path) -> None:
    """Drop all but the newest ``keep`` checkpoints (and the best), and crashed writes."""
    for prefix in (STAGING_PREFIX, ASIDE_PREFIX):
        for leftover in root.glob(f"{prefix}step-*"):
            shutil.rmtree(leftover, ignore_errors=True)  # a link there: refused, left alone
    for pointer in (LATEST_FILE, BEST_FILE):
        for leftover in root.glob(f".{pointer}.*.tmp"):
            leftover.unlink(missing_ok=True)  # unlinking a link never touches its target
    spared = best_pointer_target(root)
    older = [path for _, path in step_dirs(root) if path not in (current, spared)]
    for path in older[: max(0, len(older) - (keep - 1))]:
        aside = publish.move_aside(path, prefix=f"{ASIDE_PREFIX}{path.name}-")
        shutil.rmtree(aside, ignore_errors=True)
