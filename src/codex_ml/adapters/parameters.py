"""The state of an adapter that trains parameters of the model itself: those with a gradient.

Both built-in adapters keep what they train as parameters of the model
(``lora`` adds its matrices as submodules, ``freeze`` trains some of the
model's own), so a checkpoint of either is the parameters that require a
gradient, by name, and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def name_patterns(value: Any, refusal: str) -> tuple[str, ...] | None:
    """A setting that names modules or parameters: None, one name (as a plain command-line
    value gives it) or a non-empty list of names, as a tuple; ``ValueError(refusal)`` else."""
    names = [value] if isinstance(value, str) else value
    if names is None:
        return None
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(refusal)
    return tuple(n.strip() for n in names)


def trained_parameters(model: Any) -> dict[str, Any]:
    """Every parameter of ``model`` that requires a gradient, by name (a tied one once)."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


class TrainsParameters:
    """``trainable_state``/``load_trainable_state`` of an adapter: the parameters that train."""

    def trainable_state(self, model: Any) -> dict[str, Any]:
        """The parameters that train, detached (they share memory with the model)."""
        return {name: p.detach() for name, p in trained_parameters(model).items()}

    def load_trainable_state(self, model: Any, state: Mapping[str, Any]) -> None:
        """Copy ``state`` into the parameters that train; every one of them, nothing else."""
        import torch

        own = trained_parameters(model)
        missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
        if missing or unexpected:
            problems = [
                *(f"missing {n}" for n in missing[:3]),
                *(f"unexpected {n}" for n in unexpected[:3]),
            ]
            raise ValueError(
                f"the adapter's saved state does not fit this model ({'; '.join(problems)}); "
                "it was saved from a model built or adapted differently."
            )
        with torch.no_grad():
            for name, tensor in state.items():
                own[name].copy_(tensor)
