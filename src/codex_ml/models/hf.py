"""Hugging Face causal language models loaded from local safetensors files.

Only safetensors weights are loaded. A ``pytorch_model.bin`` is a pickle, and
unpickling a file can run arbitrary code, so a directory with only that is
refused with instructions to convert it once, where the file is trusted.
"""

from __future__ import annotations

import os
from pathlib import Path

from transformers import AutoModelForCausalLM, PreTrainedModel

from codex_ml.artefacts import resolve_artefact_dir
from codex_ml.models.placement import resolve_device, resolve_dtype

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def load_causal_lm(
    directory: str | os.PathLike[str], *, device: str = "cpu", dtype: str = "float32"
) -> PreTrainedModel:
    """Load the causal LM saved in ``directory`` (safetensors only, never the network)."""
    directory = Path(directory)
    target_device, target_dtype = resolve_device(device), resolve_dtype(dtype)
    require_safetensors(directory)
    model = AutoModelForCausalLM.from_pretrained(
        directory, local_files_only=True, use_safetensors=True, dtype=target_dtype
    )
    return model.to(target_device)


def gpt2_offline_model(
    path: str | os.PathLike[str] | None = None, *, device: str = "cpu", dtype: str = "float32"
) -> PreTrainedModel:
    """GPT-2 from local safetensors (path=, $CODEX_ML_GPT2_DIR, or artifacts/models/gpt2/)."""
    directory = resolve_artefact_dir("gpt2-offline", "gpt2", path)
    return load_causal_lm(directory, device=device, dtype=dtype)


def tinyllama_offline_model(
    path: str | os.PathLike[str] | None = None, *, device: str = "cpu", dtype: str = "float32"
) -> PreTrainedModel:
    """TinyLlama from local safetensors (path=, $CODEX_ML_TINYLLAMA_DIR, or the default dir)."""
    directory = resolve_artefact_dir("tinyllama-offline", "tinyllama", path)
    return load_causal_lm(directory, device=device, dtype=dtype)


def require_safetensors(directory: Path) -> None:
    """Raise unless ``directory`` holds safetensors weights; explain what to do instead."""
    names = [p.name for p in directory.iterdir() if p.is_file()] if directory.is_dir() else []
    if any(name.endswith(".safetensors") for name in names):
        return
    pickles = sorted(name for name in names if name.endswith(_PICKLE_SUFFIXES))
    if pickles:
        raise ValueError(
            f"{directory} has model weights only as pickle files ({', '.join(pickles)}); "
            "codex-ml never unpickles model files, because loading a pickle can run arbitrary "
            "code. Convert them once, in an environment where you trust the file: "
            "AutoModelForCausalLM.from_pretrained(dir, use_safetensors=False)"
            ".save_pretrained(dir, safe_serialization=True), which writes model.safetensors."
        )
    raise FileNotFoundError(
        f"{directory} holds no model weights (model.safetensors). Save the model there with "
        "save_pretrained(), which writes safetensors by default."
    )
