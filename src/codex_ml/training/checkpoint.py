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

Nothing here writes through a link planted in the run directory (see
:mod:`codex_ml.fsio`): ``checkpoints/`` must be a real directory, ``latest``
is replaced through an exclusively created temporary file, and a ``meta.json``
that names a file outside its own folder, or a checkpoint file that is a link,
is refused. A write that fails (a full disk) removes its temporary directory
and raises :class:`CheckpointWriteError` naming the folder and the previous
checkpoint, which it never touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_model
from torch import nn

from codex_ml import fsio
from codex_ml.models.parameters import count_parameters
from codex_ml.training.compile import strip_compile_prefix, strip_compile_prefixes, uncompiled
from codex_ml.training.errors import CheckpointError, CheckpointWriteError

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
    ``meta.json``. Keeps the newest ``keep`` checkpoints. Raises
    :class:`CheckpointWriteError` when the disk refuses the write, having
    removed the partial one and left every earlier checkpoint as it was. A
    ``torch.compile``d model is saved as the module it wraps (no ``_orig_mod.``).
    """
    model = uncompiled(model)
    root = fsio.make_dir(Path(output_dir) / CHECKPOINTS_DIR)
    fsio.refuse_link(root / LATEST_FILE)  # before anything is written, not after
    final = root / f"step-{step}"
    tmp: Path | None = None
    try:
        tmp = fsio.make_temp_dir(root, prefix=f".tmp-step-{step}-")
        # A fresh private (0700) directory: nothing can be planted in it, so the
        # libraries may open their files by name.
        _write_files(tmp, step=step, model=model, state=state, config=config)
        # A rerun into the same output_dir: move the old step-<N> aside, and delete it
        # only once the new one is in place.
        replaced = _move_aside(final) if os.path.lexists(final) else None
        os.rename(tmp, final)
        fsio.fsync_dir(root)
    except Exception as exc:
        _discard(tmp)  # frees what the partial write took
        if isinstance(exc, fsio.UnsafePathError):
            raise
        cause = exc.cause if isinstance(exc, _FileWriteFailed) else exc
        raise _write_failed(root, final, exc) from cause
    except BaseException:
        _discard(tmp)
        raise
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)
    try:
        fsio.write_atomic(root / LATEST_FILE, f"{final.name}\n", durable=True)
    except fsio.UnsafePathError:
        raise
    except OSError as exc:
        raise _pointer_failed(root, final, exc) from exc
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

    A failure is re-raised as :class:`_FileWriteFailed`, naming the file.
    """
    try:
        save_model(model, str(folder / MODEL_FILE))
    except Exception as exc:
        raise _FileWriteFailed(MODEL_FILE, exc) from exc
    try:
        torch.save(dict(state), folder / STATE_FILE)
    except Exception as exc:
        raise _FileWriteFailed(STATE_FILE, exc) from exc
    meta = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "parameters": count_parameters(model),
        "trainer": dict(config),
        "files": {name: _fingerprint(folder / name) for name in (MODEL_FILE, STATE_FILE)},
    }
    try:
        fsio.write_atomic(
            folder / META_FILE, json.dumps(meta, indent=2, default=str).encode(), durable=True
        )
    except OSError as exc:
        raise _FileWriteFailed(META_FILE, exc) from exc


class _FileWriteFailed(Exception):
    """Writing one file of a checkpoint failed: which one, and the library's error."""

    def __init__(self, name: str, cause: Exception) -> None:
        super().__init__(name)
        self.name = name
        self.cause = cause


def _discard(tmp: Path | None) -> None:
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


def _cause(exc: BaseException) -> str:
    """One line for what the library said (torch's and safetensors' messages run long)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{os.strerror(exc.errno)} (errno {exc.errno})"
    first = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _space_left(folder: Path) -> str:
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:,.1f} MiB free there now"
    except OSError:
        return "its free space could not be read"


def _write_failed(root: Path, final: Path, exc: BaseException) -> CheckpointWriteError:
    what = _cause(exc)
    if isinstance(exc, _FileWriteFailed):
        what = f"writing {exc.name} failed with {_cause(exc.cause)}"
    previous = find_latest_checkpoint(root)
    if previous is not None:
        kept = (
            f"The previous checkpoint, {previous}, is intact (nothing of it was touched) and "
            "a resume picks it up; the partial one was removed."
        )
    else:
        kept = "No earlier checkpoint exists in it; the partial one was removed."
    return CheckpointWriteError(
        f"Could not write checkpoint {final.name} in {root}: {what}. This usually means "
        f"the disk is full or over quota ({_space_left(root)}). {kept} Free some space, or "
        "lower keep_checkpoints, or move the run to a larger disk, then resume the run "
        "(training.resume=<run dir> on the command line, resume_from= in Python).",
        path=root,
        previous=previous,
    )


def _pointer_failed(root: Path, final: Path, exc: BaseException) -> CheckpointWriteError:
    return CheckpointWriteError(
        f"Checkpoint {final} is complete, but {root / LATEST_FILE} could not be updated to "
        f"name it: {_cause(exc)} ({_space_left(root)}; the disk is probably full). Nothing is "
        f"lost: a resume picks the newest complete checkpoint, {final.name}, whatever "
        f"{LATEST_FILE} says. Free some space, then resume the run (training.resume=<run dir> "
        "on the command line, resume_from= in Python).",
        path=root,
        previous=final,
    )


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


def _move_aside(path: Path) -> Path:
    """Rename ``path`` to a hidden name; a half-deleted directory never looks like a checkpoint."""
    trash = fsio.make_temp_dir(path.parent, prefix=f".trash-{path.name}-")
    os.rename(path, trash / path.name)
    return trash


def _prune(root: Path, *, keep: int, current: Path) -> None:
    """Drop all but the newest ``keep`` checkpoints, and leftovers of crashed writes."""
    for leftover in root.glob(".t*-step-*"):  # .tmp-step-* and .trash-step-*
        shutil.rmtree(leftover, ignore_errors=True)  # a link there: refused, left alone
    for leftover in root.glob(f".{LATEST_FILE}.*.tmp"):
        leftover.unlink(missing_ok=True)  # unlinking a link never touches its target
    older = [path for _, path in _step_dirs(root) if path != current]
    for path in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(_move_aside(path), ignore_errors=True)


# --- finding -----------------------------------------------------------------


def _step_dirs(root: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``step-<N>`` directory under ``root``, oldest first.

    A link named ``step-<N>`` is not one: codex-ml never writes one.
    """
    found = []
    for path in root.iterdir() if root.is_dir() else ():
        match = _STEP_DIR.match(path.name)
        if match and path.is_dir() and not path.is_symlink():
            found.append((int(match.group(1)), path))
    return sorted(found)


def _is_complete(path: Path) -> bool:
    return all((path / name).is_file() for name in (MODEL_FILE, STATE_FILE, META_FILE))


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
    complete = [(step, step_dir) for step, step_dir in _step_dirs(root) if _is_complete(step_dir)]
    named = _named_by_pointer(root)
    if named is not None and not _is_complete(named):
        return named  # damaged after it was written: loading it names the file at fault
    if named is not None:
        named_step, named_at = int(named.name.split("-")[1]), _written_at(named)
        newer = [d for step, d in complete if step > named_step and _written_at(d) >= named_at]
        return newer[-1] if newer else named
    aside = [pair for trash in root.glob(".trash-step-*") for pair in _step_dirs(trash)]
    # On a tie the checkpoint in place beats the copy moved aside (True sorts last).
    ranked = sorted(
        (step, step_dir.parent == root, str(step_dir))
        for step, step_dir in [*complete, *aside]
        if _is_complete(step_dir)
    )
    return Path(ranked[-1][2]) if ranked else None


def _named_by_pointer(root: Path) -> Path | None:
    """The ``step-<N>`` directory that ``root/latest`` names, if it exists, else None."""
    pointer = root / LATEST_FILE
    if not pointer.is_file():
        return None
    try:
        name = pointer.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    step_dir = root / name
    if not _STEP_DIR.match(name) or step_dir.is_symlink() or not step_dir.is_dir():
        return None
    return step_dir


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
    the model and optimizer are left as they were. ``model`` may be compiled or
    not, whether or not the checkpoint's model was.
    """
    model = uncompiled(model)
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
    _refuse_link(path)
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


def _refuse_link(path: Path) -> None:
    """A checkpoint file that is a link was not written by codex-ml: never read through it."""
    if path.is_symlink():
        try:
            target = f"to {os.readlink(path)}"
        except OSError:
            target = "unreadable"
        raise CheckpointError(
            f"Checkpoint file {path} is a symbolic link ({target}); codex-ml writes "
            "checkpoints as plain files, so this one was not written by it or has been "
            "tampered with. Nothing was read from it.",
            path=path,
        )


def _verify_file(path: Path, expected: Mapping[str, Any]) -> None:
    _refuse_link(path)
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
    # Written by another tool from a compiled model: its names carry torch.compile's prefix.
    weights = strip_compile_prefixes(weights)
    tied = {strip_compile_prefix(d): strip_compile_prefix(k) for d, k in tied.items()}
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
