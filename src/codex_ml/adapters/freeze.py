"""``freeze``: train only the parameters whose names match some globs; the rest is frozen.

``trainable: ["blocks.3.*", "ln_f.*"]`` trains the last block of a four-layer
decoder and its final norm. Names are those of ``model.named_parameters()``,
a tied weight under each of its names (``lm_head.weight`` and
``wte.weight`` are one tensor in codex-ml's decoder). Left null, the
normalisation layers train (LN tuning): every parameter of a module whose
class name ends in ``Norm`` (LayerNorm, RMSNorm, LlamaRMSNorm...), whatever the
architecture calls them. Nothing is added to the model, so there is nothing
to merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from codex_ml.adapters.parameters import TrainsParameters, name_patterns


@dataclass(frozen=True, kw_only=True)
class Freeze(TrainsParameters):
    """Train the parameters whose names match ``trainable`` (globs); None: the norm layers."""

    trainable: Sequence[str] | None = None

    def __post_init__(self) -> None:
        globs = name_patterns(
            self.trainable,
            f"freeze trainable={self.trainable!r} must be a non-empty list of globs over "
            "parameter names (blocks.3.*, lm_head.*), or null for the norm layers.",
        )
        object.__setattr__(self, "trainable", globs)

    def apply(self, model: Any) -> Any:
        """Set ``requires_grad`` on the chosen parameters and clear it on every other one."""
        chosen = self.chosen(model)
        for parameter in model.parameters():
            parameter.requires_grad_(id(parameter) in chosen)
        return model

    def merge(self, model: Any) -> Any:
        """Nothing to fold in: what trained are the model's own parameters. All train again."""
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model

    def chosen(self, model: Any) -> set[int]:
        """The ids of the parameters that train; every glob must match at least one name."""
        named = list(model.named_parameters(remove_duplicate=False))
        if self.trainable is None:
            return _norm_parameters(model)
        unmatched = [g for g in self.trainable if not any(fnmatchcase(n, g) for n, _ in named)]
        if unmatched:
            sample = ", ".join(name for name, _ in named[:8])
            raise ValueError(
                f"freeze trainable: {', '.join(map(repr, unmatched))} matches none of the "
                f"{len(named)} parameter names of {type(model).__name__} (globs over the whole "
                f"name: {sample}{', ...' if len(named) > 8 else ''}). Fix the glob (blocks.3.* "
                "rather than blocks.3), or leave adapter.trainable null for the norm layers."
            )
        return {id(p) for name, p in named if any(fnmatchcase(name, g) for g in self.trainable)}


def _norm_parameters(model: Any) -> set[int]:
    chosen = {
        id(p)
        for module in model.modules()
        if type(module).__name__.endswith("Norm")
        for p in module.parameters(recurse=False)
    }
    if not chosen:
        raise ValueError(
            f"freeze: {type(model).__name__} has no normalisation layer with parameters to "
            "train; name the parameters that should train with adapter.trainable=[...] (globs)."
        )
    return chosen
