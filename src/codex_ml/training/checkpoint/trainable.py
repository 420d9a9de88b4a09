"""Checkpoints of an adapted model: only what trains, and what it was trained on.

A run with an adapter (``adapter=lora``) prepares its model with :func:`adapt`,
which applies the adapter and notes it on the model. From then on a
checkpoint of that model asks the adapter what to hold
(:meth:`~codex_ml.protocols.Adapter.trainable_state`): ``model.safetensors``
has only the trained tensors, never a base weight, and ``meta.json`` records
the adapter (registry key and kwargs) and a fingerprint of the frozen base.
Loading refuses an adapter checkpoint for a model without that adapter (and
the other way round) and one whose base is not the model built now, before a
single weight is touched. A model with no adapter is saved and loaded whole,
as always. The trainer knows none of this: it hands the model to the
checkpoint, which asks the model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codex_ml.training.errors import CheckpointError

#: The attribute of an adapted model that holds its :class:`Adapted` note.
NOTE = "codex_ml_adapter"
#: The ``meta.json`` key of an adapter checkpoint.
META_KEY = "adapter"
#: Elements read from each end of every frozen tensor for the base's fingerprint.
_FINGERPRINT_ELEMENTS = 2048
#: The methods an adapter must have (codex_ml.protocols.Adapter).
ADAPTER_METHODS = ("apply", "trainable_state", "load_trainable_state", "merge")


@dataclass(frozen=True)
class Adapted:
    """What prepared a model: the adapter, its registry key and kwargs, the frozen base's print."""

    adapter: Any
    name: str
    kwargs: dict[str, Any]
    base_fingerprint: str

    def describe(self) -> dict[str, Any]:
        """The adapter as ``meta.json`` records it."""
        return {"name": self.name, "kwargs": self.kwargs, "base_fingerprint": self.base_fingerprint}


def adapt(model: nn.Module, adapter: Any, *, name: str, kwargs: Mapping[str, Any]) -> nn.Module:
    """``adapter.apply(model)``, noted on the model it returns so that checkpoints ask it."""
    missing = [m for m in ADAPTER_METHODS if not callable(getattr(adapter, m, None))]
    if missing:
        raise TypeError(
            f"adapter {name!r} built a {type(adapter).__name__}, which lacks "
            f"{', '.join(missing)}; an adapter implements apply, trainable_state, "
            "load_trainable_state and merge (codex_ml.protocols.Adapter)."
        )
    adapted_model = adapter.apply(model)
    if not isinstance(adapted_model, nn.Module):
        raise TypeError(
            f"adapter {name!r}: apply() returned {type(adapted_model).__name__}, not the "
            "torch.nn.Module to train."
        )
    if not any(p.requires_grad for p in adapted_model.parameters()):
        raise ValueError(
            f"adapter {name!r} left no parameter of {type(adapted_model).__name__} to train."
        )
    note = Adapted(adapter, name, dict(kwargs), base_fingerprint(adapted_model))
    object.__setattr__(adapted_model, NOTE, note)  # a plain attribute, not a submodule
    return adapted_model


def adapted(model: nn.Module) -> Adapted | None:
    """The adapter that prepared ``model``, if any."""
    note = getattr(model, NOTE, None)
    return note if isinstance(note, Adapted) else None


def merged(model: nn.Module) -> nn.Module:
    """``model`` with its adapter merged into the base weights (itself when it has none)."""
    note = adapted(model)
    if note is None:
        return model
    plain = note.adapter.merge(model)
    for each in (model, plain):
        each.__dict__.pop(NOTE, None)
    return plain


def base_fingerprint(model: nn.Module) -> str:
    """A print of the frozen tensors: names, shapes and values at both ends of each.

    Cheap on a large model, and enough to tell another initialisation or
    another pretrained model. Values are compared as bfloat16, so a base
    loaded in another precision or on another device prints the same.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.named_parameters()):
        if tensor.requires_grad:
            continue
        flat = tensor.detach().reshape(-1)
        ends = torch.cat((flat[:_FINGERPRINT_ELEMENTS], flat[-_FINGERPRINT_ELEMENTS:]))
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(ends.to("cpu", torch.bfloat16).float().numpy().tobytes())
    return digest.hexdigest()[:16]


# --- what save and load ask ----------------------------------------------------------------------


def save_weights(model: nn.Module, path: Path) -> None:
    """Write ``model``'s checkpoint weights: the adapter's trainable state, or the whole model."""
    from safetensors.torch import save_file, save_model

    note = adapted(model)
    if note is None:
        save_model(model, str(path))
        return
    state = {
        name: tensor.detach().to("cpu").contiguous()
        for name, tensor in note.adapter.trainable_state(model).items()
    }
    save_file(state, str(path))


def meta_entries(model: nn.Module) -> dict[str, Any]:
    """What ``meta.json`` adds for an adapted model (nothing for a plain one)."""
    note = adapted(model)
    return {} if note is None else {META_KEY: note.describe()}


def expected_weights(model: nn.Module) -> Mapping[str, torch.Tensor]:
    """The tensors a checkpoint of ``model`` must hold, by name (shapes are checked)."""
    note = adapted(model)
    return model.state_dict() if note is None else note.adapter.trainable_state(model)


def load_weights(model: nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
    """Put checked checkpoint weights into ``model``, through its adapter if it has one."""
    note = adapted(model)
    if note is None:
        model.load_state_dict(weights)
    else:
        note.adapter.load_trainable_state(model, weights)


def check_meta(meta: Mapping[str, Any], model: nn.Module, path: Path) -> None:
    """Refuse an adapter checkpoint for a model prepared otherwise, naming what differs."""
    saved, note = meta.get(META_KEY), adapted(model)
    if saved is None and note is None:
        return
    if saved is not None and not isinstance(saved, dict):
        raise CheckpointError(
            f"{path} records its adapter as {type(saved).__name__}, not a mapping; the "
            "checkpoint is corrupt or was not written by codex-ml.",
            path=path,
        )
    if saved is None:
        assert note is not None
        raise CheckpointError(
            f"{path} is a checkpoint of the whole model, but this model was prepared by adapter "
            f"{note.name!r} (adapter=...) and trains only part of it; load it without the "
            "adapter (as the run that wrote it was configured).",
            path=path,
        )
    if note is None:
        raise CheckpointError(
            f"{path} holds only the weights adapter {saved.get('name')!r} trained, not a whole "
            f"model; build the model with that adapter (adapter={saved.get('name')} with "
            f"kwargs {saved.get('kwargs')}), as the run that wrote it was configured.",
            path=path,
        )
    if (saved.get("name"), saved.get("kwargs")) != (note.name, _as_json(note.kwargs)):
        raise CheckpointError(
            f"{path} was trained with adapter {saved.get('name')!r} {saved.get('kwargs')}, but "
            f"this model was prepared by {note.name!r} {note.kwargs}; use the run's own adapter "
            "settings.",
            path=path,
        )
    if saved.get("base_fingerprint") != note.base_fingerprint:
        raise CheckpointError(
            f"{path} holds adapter weights trained on another base model: the frozen weights "
            "built now differ from the ones it was trained on. Build the run's own base model "
            "(the same model.path; for decoder_only the same model.seed, which must not be "
            "null, since an adapter checkpoint never holds the base weights).",
            path=path,
        )


def _as_json(value: Any) -> Any:
    """``value`` as ``meta.json`` gives it back (tuples as lists)."""
    import json

    return json.loads(json.dumps(value, default=str))
