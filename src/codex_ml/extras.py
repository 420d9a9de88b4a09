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
    "tensorboard": "track",
    "mlflow": "track",
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
