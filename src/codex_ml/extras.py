"""Which optional extra of codex-ml brings which third-party package.

``pip install codex-ml`` is the registries alone; the training job, the Hugging
Face components and the data formats each come with an extra. A missing
package is then not a bug to report but an install step to name:
``pip install "codex-ml[train]"``.
"""

from __future__ import annotations

#: top-level module -> the extra that installs it.
EXTRA_OF = {
    "torch": "train",
    "hydra": "train",
    "omegaconf": "train",
    "safetensors": "train",
    "tqdm": "train",
    "matplotlib": "train",
    "numpy": "train",
    "transformers": "hf",
    "tokenizers": "hf",
    "accelerate": "hf",
    "pyarrow": "data",
    "datasets": "data",
    "tensorboard": "tensorboard",
    "mlflow": "mlflow",
    "wandb": "wandb",
    "peft": "finetune",
    "lm_eval": "eval",
}


def missing_extra(exc: BaseException) -> tuple[str, str] | None:
    """(module, extra) when ``exc`` is a missing package one of codex-ml's extras installs."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    extra = EXTRA_OF.get(top)
    return (top, extra) if extra else None


def install_hint(module: str, extra: str) -> str:
    """One sentence: what is missing and the command that installs it."""
    return (
        f"this needs {module}, which is not installed; it comes with codex-ml's {extra!r} "
        f'extra: pip install "codex-ml[{extra}]"'
    )


#: Built-in component module -> the third-party packages it needs, so that a listing can
#: tell a missing extra without importing the module (``codex-ml plugins list``).
BUILTIN_NEEDS: dict[str, tuple[str, ...]] = {
    "codex_ml.tokenizers.hf": ("transformers",),
    "codex_ml.tokenizers.bpe": ("tokenizers", "transformers"),
    "codex_ml.models.hf": ("torch", "transformers"),
    "codex_ml.models.decoder_only": ("torch",),
    "codex_ml.training.functional": ("torch",),
    "codex_ml.data.parquet": ("pyarrow",),
    "codex_ml.data.hf_datasets": ("datasets",),
    "codex_ml.callbacks.tensorboard_events": ("torch", "tensorboard"),
    "codex_ml.callbacks.mlflow_runs": ("mlflow",),
    "codex_ml.callbacks.wandb_runs": ("wandb",),
    "codex_ml.adapters.lora": ("torch", "peft"),
    "codex_ml.adapters.freeze": ("torch",),
}


def missing_for(target: str | None) -> tuple[str, str] | None:
    """(module, extra) when a built-in entry's ``"module:attr"`` needs a package not installed.

    Looks the packages up without importing them (``importlib.util.find_spec``).
    """
    if not target:
        return None
    needs = BUILTIN_NEEDS.get(target.partition(":")[0], ())
    if not needs:
        return None
    from importlib.util import find_spec

    for module in needs:
        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):  # a module set to None in sys.modules, say
            found = False
        if not found:
            return module, EXTRA_OF[module]
    return None
