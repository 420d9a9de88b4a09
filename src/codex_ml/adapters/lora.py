"""``lora``: low-rank adapters on a model's linear layers, through ``peft``; the base is frozen.

Each targeted layer ``W`` becomes ``W x + (alpha / r) B A x`` with ``A`` (r x in)
and ``B`` (out x r, zeros at first) the only parameters that train. The layers
are wrapped in place (``peft.inject_adapter_in_model``), so the model keeps
its own class: codex-ml's decoder still generates with its KV cache, a
Hugging Face model still has ``generate``, and export still knows the
architecture. Merging folds ``(alpha / r) B A`` into ``W`` and puts the plain
layers back.

Where LoRA goes when ``target_modules`` is not given: the q/k/v and output
projections of codex-ml's decoder (``decoder_only``, ``minilm``), and for a
Hugging Face model ``peft``'s own table by ``config.model_type`` (GPT-2's
``c_attn``, Llama's ``q_proj`` and ``v_proj``...). A name matches a module
whose path ends with it (``attn.qkv`` matches ``blocks.0.attn.qkv``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from codex_ml.adapters.parameters import TrainsParameters, name_patterns

#: LoRA's place in codex-ml's decoder when no target_modules are given: every attention
#: layer's fused q/k/v projection and its output projection.
DECODER_TARGETS = ("attn.qkv", "attn.proj")
#: Layer types that hold their weight transposed (GPT-2's ``Conv1D``): peft must know.
_TRANSPOSED = ("Conv1D",)


@dataclass(frozen=True, kw_only=True)
class LoRA(TrainsParameters):
    """Low-rank adapters (LoRA) on the linear layers ``target_modules`` names; the rest frozen.

    ``r`` is the rank, ``alpha`` the scale (the update is ``alpha / r * B A``),
    ``dropout`` applies to the adapter's input; ``target_modules`` None picks
    the model's attention projections (see the module's docstring).
    """

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    target_modules: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 1:
            raise ValueError(f"LoRA r={self.r!r} must be an integer >= 1 (the rank).")
        if not _number(self.alpha) or self.alpha <= 0:
            raise ValueError(f"LoRA alpha={self.alpha!r} must be a number > 0.")
        if not _number(self.dropout) or not 0 <= self.dropout < 1:
            raise ValueError(f"LoRA dropout={self.dropout!r} must be a number in [0, 1).")
        targets = name_patterns(
            self.target_modules,
            f"LoRA target_modules={self.target_modules!r} must be a non-empty list of "
            "module names (attn.qkv, c_attn, q_proj...), or null for the model's default.",
        )
        object.__setattr__(self, "target_modules", targets)

    # --- the protocol --------------------------------------------------------------------------

    def apply(self, model: Any) -> Any:
        """Wrap the targeted layers of ``model`` in place; only the LoRA matrices train."""
        from peft import LoraConfig, inject_adapter_in_model
        from peft.tuners.tuners_utils import cast_adapter_dtype

        targets = self.targets_for(model)
        wrapped = [m for name, m in model.named_modules() if _matches_any(name, targets)]
        config = LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=float(self.dropout),
            target_modules=list(targets),
            fan_in_fan_out=any(type(m).__name__ in _TRANSPOSED for m in wrapped),
            bias="none",
        )
        try:
            inject_adapter_in_model(config, model)
        except ValueError as exc:  # a target that is not a layer peft can wrap (a block, a norm)
            raise ValueError(
                f"LoRA cannot wrap every module target_modules={list(targets)} names in "
                f"{type(model).__name__}: {' '.join(str(exc).split())[:300]} Name linear "
                f"layers only; this model's are: {', '.join(linear_layer_names(model))}."
            ) from None
        # As peft.get_peft_model does: the adapters of a bf16/fp16 base train in float32.
        cast_adapter_dtype(model, "default")
        return model

    def merge(self, model: Any) -> Any:
        """Fold every adapter into its layer's weight and put the plain layer back, in place."""
        for name, layer in adapted_layers(model).items():
            layer.merge(safe_merge=True)  # refuses to write NaN or inf into the weight
            _replace(model, name, layer.get_base_layer())
        model.__dict__.pop("peft_config", None)  # what peft noted on the model it wrapped
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model

    # --- what export and errors need -----------------------------------------------------------

    def targets_for(self, model: Any) -> tuple[str, ...]:
        """The target names for ``model``, each checked to match at least one module."""
        targets = self.target_modules or default_targets(model)
        assert targets is not None
        names = [name for name, _ in model.named_modules()]
        unmatched = [t for t in targets if not any(_matches(name, t) for name in names)]
        if unmatched:
            import difflib

            layers = linear_layer_names(model)
            close = difflib.get_close_matches(unmatched[0], layers, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"LoRA target_modules: {', '.join(map(repr, unmatched))} matches no module of "
                f"{type(model).__name__} (a name matches a module whose path ends with it).{hint} "
                f"Its linear layers are: {', '.join(layers)}. Set adapter.target_modules to "
                "some of those, or leave it null for the model's default."
            )
        return tuple(targets)

    def peft_adapter(self, model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """``peft``'s ``LoraConfig`` fields and the weights as ``peft`` saves them, for ``model``.

        The target modules are the full paths of the wrapped layers; the weights
        are named ``<layer path>.lora_A.weight`` (no adapter name), on the CPU.
        """
        layers = adapted_layers(model)
        config = {
            "r": self.r,
            "lora_alpha": self.alpha,
            "lora_dropout": float(self.dropout),
            "target_modules": sorted(layers),
            "fan_in_fan_out": any(
                type(layer.get_base_layer()).__name__ in _TRANSPOSED for layer in layers.values()
            ),
            "bias": "none",
        }
        weights = {
            name.replace(".default.", "."): p.detach().to("cpu").contiguous()
            for name, p in model.named_parameters()
            if ".lora_" in name
        }
        return config, weights


def default_targets(model: Any) -> tuple[str, ...]:
    """Where LoRA goes in ``model`` when not told: by its ``config.model_type``."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type == "decoder_only":
        return DECODER_TARGETS
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS

    if isinstance(model_type, str) and model_type in PEFT_DEFAULTS:
        return tuple(PEFT_DEFAULTS[model_type])
    raise ValueError(
        f"LoRA has no default target_modules for {type(model).__name__} (model type "
        f"{model_type!r}); set adapter.target_modules to some of its linear layers: "
        f"{', '.join(linear_layer_names(model))}."
    )


def adapted_layers(model: Any) -> dict[str, Any]:
    """The layers LoRA wrapped, by path."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return {name: m for name, m in model.named_modules() if isinstance(m, BaseTunerLayer)}


def linear_layer_names(model: Any, limit: int = 12) -> list[str]:
    """The distinct last two parts of the paths of ``model``'s linear layers (``attn.qkv``)."""
    from torch import nn

    found: dict[str, None] = {}
    for name, module in model.named_modules():
        if name and (isinstance(module, nn.Linear) or type(module).__name__ in _TRANSPOSED):
            parts = [p for p in name.split(".") if not p.isdigit()]
            found[".".join(parts[-2:])] = None
    names = list(found)
    return names[:limit] + (["..."] if len(names) > limit else [])


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith(f".{target}")


def _matches_any(name: str, targets: Sequence[str]) -> bool:
    return any(_matches(name, t) for t in targets)


def _replace(model: Any, path: str, module: Any) -> None:
    parent, _, attribute = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attribute, module)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
