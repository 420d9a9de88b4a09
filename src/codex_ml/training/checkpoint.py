"""Crash-safe training checkpoints: write, find, verify and load.

Layout of a run's output directory::

    checkpoints/
        step-200/
            model.safetensors   weights only (tied weights stored once)
            state.pt            optimizer, step, tokens seen, sampler and RNG states
            meta.json           trainer config, model class, sizes and sha256 of the files
        step-400/ ...
        latest                  the name of the newest checkpoint ("step-400")

A checkpoint is written into a temporary directory, fsynced, and renamed to
``step-<N>/`` in one step; only then is ``latest`` replaced (write + fsync +
``os.replace``) and older checkpoints pruned. A process killed at any moment
therefore leaves either the old or the new checkpoint complete, and ``latest``
always names a complete one. Loading checks every file against the sizes and
hashes in ``meta.json`` and every tensor shape against the model before
touching a single weight, so a bad checkpoint is a :class:`CheckpointError`
naming the file, never a half-loaded model.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_model
from torch import nn

from codex_ml.models.parameters import count_parameters
from codex_ml.training.errors import CheckpointError

FORMAT_VERSION = 1
CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "latest"
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.pt"
META_FILE = "meta.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: where it was, its step, its ``meta.json`` and ``state.pt``."""

    path: Path
    step: int
    meta: dict[str, Any]
    state: dict[str, Any]


# --- writing -----------------------------------------------------------------


def save_checkpoint(
    output_dir: str | Path,
    *,
    step: int,
    model: nn.Module,
    state: Mapping[str, Any],
    config: Mapping[str, Any],
    keep: int,
) -> Path:
    """Write ``output_dir/checkpoints/step-<step>/`` atomically and return its path.

    ``state`` must hold only tensors and plain containers (it is read back with
    ``weights_only=True``); ``config`` is the trainer configuration recorded in
    ``meta.json``. Keeps the newest ``keep`` checkpoints.
    """
    root = Path(output_dir) / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-step-{step}-", dir=root))
    try:
        save_model(model, str(tmp / MODEL_FILE))
        torch.save(dict(state), tmp / STATE_FILE)
        meta = {
            "format_version": FORMAT_VERSION,
            "step": step,
            "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
            "parameters": count_parameters(model),
            "trainer": dict(config),
            "files": {name: _fingerprint(tmp / name) for name in (MODEL_FILE, STATE_FILE)},
        }
        _write_durably(tmp / META_FILE, json.dumps(meta, indent=2, default=str).encode())
        _fsync_dir(tmp)
        # A rerun into the same output_dir: move the old step-<N> aside, and delete it
        # only once the new one is in place.
        replaced = _move_aside(final) if final.exists() else None
        os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)
    _write_durably(root / LATEST_FILE, f"{final.name}\n".encode(), atomic=True)
    _prune(root, keep=keep, current=final)
    return final


def _fingerprint(path: Path) -> dict[str, Any]:
    """Size and sha256 of a file, after making sure it is on disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
    return {"bytes": path.stat().st_size, "sha256": _sha256(path)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_durably(path: Path, data: bytes, *, atomic: bool = False) -> None:
    target = path.with_name(f".{path.name}.tmp") if atomic else path
    with open(target, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    if atomic:
        os.replace(target, path)
        _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _move_aside(path: Path) -> Path:
    """Rename ``path`` to a hidden name; a half-deleted directory never looks like a checkpoint."""
    trash = Path(tempfile.mkdtemp(prefix=f".trash-{path.name}-", dir=path.parent))
    os.rename(path, trash / path.name)
    return trash


def _prune(root: Path, *, keep: int, current: Path) -> None:
    """Drop all but the newest ``keep`` checkpoints, and leftovers of crashed writes."""
    for leftover in root.glob(".t*-step-*"):  # .tmp-step-* and .trash-step-*
        shutil.rmtree(leftover, ignore_errors=True)
    older = [path for _, path in _step_dirs(root) if path != current]
    for path in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(_move_aside(path), ignore_errors=True)


# --- finding -----------------------------------------------------------------


def _step_dirs(root: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``step-<N>`` directory under ``root``, oldest first."""
    found = []
    for path in root.iterdir() if root.is_dir() else ():
        match = _STEP_DIR.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found)


def _is_complete(path: Path) -> bool:
    return all((path / name).is_file() for name in (MODEL_FILE, STATE_FILE, META_FILE))


def find_latest_checkpoint(path: str | Path) -> Path | None:
    """The newest complete checkpoint under a run directory or its ``checkpoints/``, else None.

    ``latest`` is trusted when it names an existing directory. Without it (or
    when it names one that is gone) the highest-numbered complete ``step-<N>``
    wins, so a write interrupted before its rename is never picked; that search
    includes a checkpoint moved aside to be replaced, should the replacing
    process have been killed between its two renames.
    """
    path = Path(path)
    root = path if path.name == CHECKPOINTS_DIR else path / CHECKPOINTS_DIR
    pointer = root / LATEST_FILE
    if pointer.is_file():
        name = pointer.read_text().strip()
        if _STEP_DIR.match(name) and (root / name).is_dir():
            return root / name
    candidates = _step_dirs(root)
    for trash in root.glob(".trash-step-*"):
        candidates += _step_dirs(trash)
    complete = [step_dir for _, step_dir in sorted(candidates) if _is_complete(step_dir)]
    return complete[-1] if complete else None


def resolve_checkpoint(path: str | Path) -> Path:
    """The ``step-<N>`` directory that ``path`` (run dir, checkpoints dir or step dir) names."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"Checkpoint path {path} does not exist.", path=path)
    if (path / META_FILE).exists() or _STEP_DIR.match(path.name):
        return path
    found = find_latest_checkpoint(path)
    if found is None:
        raise CheckpointError(
            f"No checkpoint found under {path}: expected {CHECKPOINTS_DIR}/step-<N>/ holding "
            f"{MODEL_FILE}, {STATE_FILE} and {META_FILE}. Pass a run's output_dir, its "
            f"{CHECKPOINTS_DIR}/ directory or one step-<N> directory.",
            path=path,
        )
    return found


# --- loading -----------------------------------------------------------------


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    map_location: str | torch.device = "cpu",
) -> Checkpoint:
    """Verify the checkpoint at ``path`` and load it into ``model`` (and ``optimizer``).

    ``path`` is a run's output dir, its ``checkpoints/`` dir, or a ``step-<N>``
    dir. Raises :class:`CheckpointError` naming the file at fault when anything
    is missing, truncated, corrupt or shaped for another model; in that case
    the model and optimizer are left as they were.
    """
    step_dir = resolve_checkpoint(path)
    meta = _read_meta(step_dir / META_FILE)
    for name, expected in meta["files"].items():
        _verify_file(step_dir / name, expected)
    weights = _read_weights(step_dir / MODEL_FILE, model)
    state = _read_state(step_dir / STATE_FILE, map_location)
    if optimizer is not None:
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError) as exc:
            raise CheckpointError(
                f"{step_dir / STATE_FILE} holds optimizer state that does not fit this "
                f"optimizer ({exc}); the checkpoint was written for another model or "
                "optimizer setup.",
                path=step_dir / STATE_FILE,
            ) from exc
    model.load_state_dict(weights)  # shapes were checked: this cannot fail half-way
    return Checkpoint(path=step_dir, step=int(meta["step"]), meta=meta, state=state)


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise CheckpointError(f"Checkpoint file {path} is missing.", path=path) from exc
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"Checkpoint file {path} is not valid JSON ({exc}); the checkpoint is corrupt.",
            path=path,
        ) from exc
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        version = meta.get("format_version") if isinstance(meta, dict) else None
        raise CheckpointError(
            f"Checkpoint file {path} has format_version {version!r}; this codex-ml reads "
            f"version {FORMAT_VERSION}.",
            path=path,
        )
    if not {"step", "files"} <= meta.keys() or not {MODEL_FILE, STATE_FILE} <= meta["files"].keys():
        raise CheckpointError(
            f"Checkpoint file {path} lacks the step or the file list; the checkpoint is corrupt.",
            path=path,
        )
    return meta


def _verify_file(path: Path, expected: Mapping[str, Any]) -> None:
    if not path.is_file():
        raise CheckpointError(f"Checkpoint file {path} is missing.", path=path)
    size = path.stat().st_size
    if size != expected["bytes"]:
        raise CheckpointError(
            f"Checkpoint file {path} has {size} bytes, but {expected['bytes']} were written: "
            "it is truncated or was replaced.",
            path=path,
        )
    if _sha256(path) != expected["sha256"]:
        raise CheckpointError(
            f"Checkpoint file {path} is corrupt: its sha256 differs from the one recorded "
            f"in {META_FILE}.",
            path=path,
        )


def _read_weights(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """The file's tensors, with tied names filled in, checked against ``model``'s state dict."""
    try:
        weights = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            tied = handle.metadata() or {}  # save_model records "dropped name": "kept name"
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"Checkpoint file {path} cannot be read: {exc}", path=path) from exc
    for dropped, kept in tied.items():
        if kept in weights and dropped not in weights:
            weights[dropped] = weights[kept]
    expected = model.state_dict()
    missing = sorted(expected.keys() - weights.keys())
    unexpected = sorted(weights.keys() - expected.keys())
    wrong_shape = [
        f"{name}: file {tuple(weights[name].shape)}, model {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in weights and weights[name].shape != tensor.shape
    ]
    if missing or unexpected or wrong_shape:
        problems = [
            *(f"missing {name}" for name in missing[:5]),
            *(f"unexpected {name}" for name in unexpected[:5]),
            *wrong_shape[:5],
        ]
        raise CheckpointError(
            f"Checkpoint file {path} does not fit {type(model).__name__}: "
            f"{'; '.join(problems)}. Build the model with the configuration the checkpoint "
            f"was trained with (see {META_FILE}).",
            path=path,
        )
    return weights


def _read_state(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged zip or pickle
        if "Weights only load failed" in str(exc):
            # torch's own message goes on to suggest weights_only=False: never for a file
            # that asks to run code.
            found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
            what = f" (it asks for {found.group(1)})" if found else ""
            raise CheckpointError(
                f"Checkpoint file {path} holds Python objects that loading it would have to "
                f"create or call{what}, where codex-ml writes only tensors and plain values: it "
                "was not written by codex-ml, or has been tampered with. It was not loaded; "
                "do not load it with weights_only=False unless you trust where it came from.",
                path=path,
            ) from exc
        raise CheckpointError(f"Checkpoint file {path} cannot be read: {exc}", path=path) from exc
    if not isinstance(state, dict):
        raise CheckpointError(
            f"Checkpoint file {path} holds a {type(state).__name__}, not a dict.", path=path
        )
    return state


# --- random state --------------------------------------------------------------


def capture_rng_state(device: torch.device) -> dict[str, Any]:
    """The RNG states a resumed run must restore to repeat its dropout exactly.

    Only the training device's CUDA generator is saved: asking for all of them
    would start a CUDA context on every GPU of the machine.
    """
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
