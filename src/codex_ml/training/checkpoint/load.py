"""Loading a checkpoint: every file checked before a single weight is touched.

Each file is checked against the size and sha256 that ``meta.json`` recorded,
every tensor's name and shape against the model, and ``state.pt`` is read with
``weights_only=True``; a checkpoint that fails any check is a
:class:`CheckpointError` naming the file at fault, and the model and optimizer
are left as they were. A ``meta.json`` naming a file outside its own folder,
or a checkpoint file that is a link, is refused without reading it.
"""

from __future__ import annotations

import json
import os
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
from codex_ml.training.checkpoint import trainable
from codex_ml.training.checkpoint.layout import (
    FORMAT_VERSION,
    META_FILE,
    MODEL_FILE,
    STATE_FILE,
    resolve_checkpoint,
    sha256_of,
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
    trainable.load_weights(model, weights)  # shapes were checked: this cannot fail half-way
    return Checkpoint(path=step_dir, step=int(meta["step"]), meta=meta, state=state)


def _read_meta(path: Path) -> dict[str, Any]:
    fsio.refuse_link(path, _linked_file)
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
    files = meta.get("files")
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


def _verify_file(path: Path, expected: Mapping[str, Any]) -> None:
    fsio.refuse_link(path, _linked_file)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint file {path} is missing.", path=path)
    size = path.stat().st_size
    if size != expected["bytes"]:
        raise CheckpointError(
            f"Checkpoint file {path} has {size} bytes, but {expected['bytes']} were written: "
            "it is truncated or was replaced.",
            path=path,
        )
    if sha256_of(path) != expected["sha256"]:
        raise CheckpointError(
            f"Checkpoint file {path} is corrupt: its sha256 differs from the one recorded "
            f"in {META_FILE}.",
            path=path,
        )


def read_weights(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """The file's tensors, with tied names filled in, checked against ``model``'s state dict."""
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
