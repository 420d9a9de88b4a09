"""Loading a checkpoint: every file checked before a single weight is touched.

Each file is checked against the size and sha256 that ``meta.json`` recorded,
every tensor's name and shape against the model, and ``state.pt`` is read with
``weights_only=True``; a checkpoint that fails any check is a
:class:`CheckpointError` naming the file at fault, and the model and optimizer
are left as they were. A ``meta.json`` naming a file outside its own folder,
or a checkpoint file that is a link, a pipe or a device, is refused without
reading it (:mod:`codex_ml.regularfile`). Weights that are NaN or infinite are
refused (a diverged run's), and so, for a resume, is a ``state.pt`` without
every value a resume needs (:func:`check_resume_state`).
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn

from codex_ml import fsio
from codex_ml.regularfile import IrregularFileError, check_regular, open_regular, read_regular
from codex_ml.training.checkpoint import trainable
from codex_ml.training.checkpoint.layout import (
    FORMAT_VERSION,
    META_FILE,
    META_LIMIT,
    MODEL_FILE,
    STATE_FILE,
    has_finite_weights,
    is_complete,
    resolve_checkpoint,
    sha256_of,
    step_dirs,
)
from codex_ml.training.compile import strip_compile_prefix, strip_compile_prefixes, uncompiled
from codex_ml.training.errors import CheckpointError


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: where it was, its step, its ``meta.json`` and ``state.pt``."""

    path: Path
    step: int
    meta: dict[str, Any]
    state: dict[str, Any]


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
    the model and optimizer are left as they were. ``model`` may be compiled or
    not, whether or not the checkpoint's model was.
    """
    model = uncompiled(model)
    step_dir = resolve_checkpoint(path)
    meta = _read_meta(step_dir / META_FILE)
    trainable.check_meta(meta, model, step_dir / META_FILE)  # the adapter, if any, fits
    for name, expected in meta["files"].items():
        _verify_file(step_dir / name, expected)
    weights = read_weights(step_dir / MODEL_FILE, model)
    _refuse_non_finite(step_dir / MODEL_FILE, weights)
    state = _read_state(step_dir / STATE_FILE, meta["files"][STATE_FILE]["bytes"], map_location)
    checkpoint = Checkpoint(path=step_dir, step=int(meta["step"]), meta=meta, state=state)
    if optimizer is not None:
        check_resume_state(checkpoint)
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError) as exc:
            raise CheckpointError(
                f"{step_dir / STATE_FILE} holds optimizer state that does not fit this "
                f"optimizer ({exc}); the checkpoint was written for another model or "
                "optimizer setup.",
                path=step_dir / STATE_FILE,
            ) from exc
    trainable.load_weights(model, weights)  # shapes were checked: this cannot fail half-way
    return checkpoint


#: What a resume reads from ``state.pt`` (the functional trainer writes these), and their types.
RESUME_STATE = {"step": int, "tokens_seen": int, "optimizer": dict, "sampler": dict, "rng": dict}


def check_resume_state(checkpoint: Checkpoint) -> None:
    """Raise a CheckpointError naming ``state.pt`` and the key unless a resume can use its state.

    Every key of :data:`RESUME_STATE` of its type, the step the one ``meta.json``
    gives, no negative token count, and random states the generators accept:
    a forged or damaged file is refused before anything is loaded, never a
    ``KeyError`` or a run at a negative step (and so a negative lr).
    """
    state, path = checkpoint.state, checkpoint.path / STATE_FILE

    def bad(key: str, what: str) -> CheckpointError:
        return CheckpointError(
            f"Checkpoint file {path} {what} (key {key!r}); codex-ml writes every value a resume "
            "needs there, so the file is damaged or was not written by codex-ml. Nothing was "
            "loaded; resume from another checkpoint (a step-<N> folder beside it).",
            path=path,
        )

    for key, kind in RESUME_STATE.items():
        if key not in state:
            raise bad(key, "lacks a value a resume needs")
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            raise bad(key, f"holds a {type(state[key]).__name__} where a {kind.__name__} belongs")
    if state["step"] != checkpoint.step:
        raise bad("step", f"gives step {state['step']}, where {META_FILE} gives {checkpoint.step}")
    if state["tokens_seen"] < 0:
        raise bad("tokens_seen", f"gives {state['tokens_seen']} tokens seen")
    if not _is_byte_tensor(state["sampler"].get("generator")):
        raise bad("sampler", "holds no generator state for the batch sampler")
    rng = state["rng"]
    try:
        random.Random().setstate(rng["python"])
        torch.Generator().set_state(rng["torch"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise bad("rng", f"holds random states the generators refuse ({exc})") from None
    if "cuda" in rng and not _is_byte_tensor(rng["cuda"]):
        raise bad("rng", "holds a CUDA random state that is not a byte tensor")


def _is_byte_tensor(value: object) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == torch.uint8


def _refuse_non_finite(path: Path, weights: Mapping[str, torch.Tensor]) -> None:
    """A checkpoint whose weights went NaN or infinite can be neither resumed nor sampled from."""
    bad = next(
        (
            name
            for name, tensor in weights.items()
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
        ),
        None,
    )
    if bad is None:
        return
    others = [d.name for d in _finite_neighbours(path.parent)]
    use = f"Use an earlier one ({', '.join(others)})" if others else "No other checkpoint is there"
    raise CheckpointError(
        f"Checkpoint file {path} holds NaN or infinite weights (in {bad}): training had "
        f"diverged when it was saved. {use}, or start again with a lower lr or a tighter "
        "grad_clip.",
        path=path,
    )


def _finite_neighbours(step_dir: Path) -> list[Path]:
    """The other complete checkpoints beside ``step_dir`` not recorded as non-finite."""
    return [
        d
        for _, d in step_dirs(step_dir.parent)
        if d != step_dir and is_complete(d) and has_finite_weights(d)
    ]


def _read_meta(path: Path) -> dict[str, Any]:
    fsio.refuse_link(path, _linked_file)
    try:
        meta = json.loads(read_regular(path, limit=META_LIMIT))
    except FileNotFoundError as exc:
        raise CheckpointError(f"Checkpoint file {path} is missing.", path=path) from exc
    except IrregularFileError as exc:
        raise _irregular(exc) from None
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
    files = meta.get("files")
    step = meta.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(
            f"Checkpoint file {path} gives step {step!r}, not a step count; the checkpoint is "
            "corrupt.",
            path=path,
        )
    if (
        "step" not in meta
        or not isinstance(files, dict)
        or not {MODEL_FILE, STATE_FILE} <= files.keys()
    ):
        raise CheckpointError(
            f"Checkpoint file {path} lacks the step or the file list; the checkpoint is corrupt.",
            path=path,
        )
    for name, expected in files.items():
        if not _is_plain_name(name):
            raise CheckpointError(
                f"Checkpoint file {path} lists {name!r}, which is not a file in the checkpoint's "
                f"own folder {path.parent}: codex-ml only lists its own files there, so this "
                "checkpoint was not written by codex-ml or has been tampered with. Nothing was "
                "read from it.",
                path=path,
            )
        if not isinstance(expected, dict) or not {"bytes", "sha256"} <= expected.keys():
            raise CheckpointError(
                f"Checkpoint file {path} lacks the size or hash of {name}; the checkpoint is "
                "corrupt.",
                path=path,
            )
    return meta


def _is_plain_name(name: object) -> bool:
    """A bare file name: no folder part, no ``..``, nothing a join could take elsewhere."""
    separators = {"/", "\\", "\0"} | ({os.altsep} if os.altsep else set())
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(sep in name for sep in separators)
    )


def _linked_file(path: Path, what: str) -> CheckpointError:
    """A checkpoint file that is a link was not written by codex-ml: never read through it."""
    return CheckpointError(
        f"Checkpoint file {path} {what}; codex-ml writes checkpoints as plain files, so this "
        "one was not written by it or has been tampered with. Nothing was read from it.",
        path=path,
    )


def _irregular(exc: IrregularFileError) -> CheckpointError:
    """A checkpoint file that is a pipe, a device or too large: refused before it is read."""
    return CheckpointError(
        f"Checkpoint file {exc.path} {exc.what}, where codex-ml writes a regular file: the "
        "checkpoint was damaged or tampered with, and nothing was read from it. Resume from "
        "another checkpoint (a step-<N> folder beside it), or remove this one.",
        path=exc.path,
    )


def _verify_file(path: Path, expected: Mapping[str, Any]) -> None:
    fsio.refuse_link(path, _linked_file)
    try:
        size = check_regular(path).st_size
    except FileNotFoundError:
        raise CheckpointError(f"Checkpoint file {path} is missing.", path=path) from None
    except IrregularFileError as exc:
        raise _irregular(exc) from None
    if size != expected["bytes"]:
        raise CheckpointError(
            f"Checkpoint file {path} has {size} bytes, but {expected['bytes']} were written: "
            "it is truncated or was replaced.",
            path=path,
        )
    try:
        digest = sha256_of(path)
    except IrregularFileError as exc:  # swapped for a pipe since it was looked at
        raise _irregular(exc) from None
    if digest != expected["sha256"]:
        raise CheckpointError(
            f"Checkpoint file {path} is corrupt: its sha256 differs from the one recorded "
            f"in {META_FILE}.",
            path=path,
        )


def read_weights(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """The file's tensors, with tied names filled in, checked against ``model``'s state dict."""
    try:
        check_regular(path)
    except IrregularFileError as exc:
        raise _irregular(exc) from None
    except OSError as exc:
        raise CheckpointError(f"Checkpoint file {path} cannot be read: {exc}", path=path) from exc
    try:
        weights = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            tied = handle.metadata() or {}  # save_model records "dropped name": "kept name"
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"Checkpoint file {path} cannot be read: {exc}", path=path) from exc
    # Written by another tool from a compiled model: its names carry torch.compile's prefix.
    weights = strip_compile_prefixes(weights)
    tied = {strip_compile_prefix(d): strip_compile_prefix(k) for d, k in tied.items()}
    for dropped, kept in tied.items():
        if kept in weights and dropped not in weights:
            weights[dropped] = weights[kept]
    expected = trainable.expected_weights(model)  # with an adapter: only what it trains
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


def _read_state(path: Path, size: int, map_location: str | torch.device) -> dict[str, Any]:
    try:
        with open_regular(path, limit=size) as handle:
            state = torch.load(handle, map_location=map_location, weights_only=True)
    except IrregularFileError as exc:
        raise _irregular(exc) from None
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
