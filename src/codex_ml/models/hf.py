"""Hugging Face causal language models loaded from local safetensors files.

Only safetensors weights are loaded. A ``pytorch_model.bin`` is a pickle, and
unpickling a file can run arbitrary code, so a directory with only that is
refused with instructions to convert it once, where the file is trusted.
For the same reason no model code is ever run from a model directory
(``trust_remote_code``): only architectures ``transformers`` itself ships load.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

from codex_ml.artefacts import resolve_artefact_dir
from codex_ml.models.causal_lm import require_causal_lm
from codex_ml.models.placement import resolve_device, resolve_dtype
from codex_ml.remote_code import refuse_remote_code

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def load_causal_lm(
    directory: str | os.PathLike[str],
    *,
    device: str = "cpu",
    dtype: str = "float32",
    attn_implementation: str | None = None,
    option: str = "model.path",
) -> PreTrainedModel:
    """Load the causal LM saved in ``directory`` (safetensors only, never the network).

    ``option`` is the config path that named the directory, for errors.
    """
    directory = Path(directory)
    target_device, target_dtype = resolve_device(device), resolve_dtype(dtype)
    refuse_remote_code(directory, option=option, kind="model")
    require_safetensors(directory)
    config = _read_config(directory)
    require_causal_lm(config.to_dict(), directory)  # before a weight is read
    options = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    try:
        with _no_progress_bar():
            model = AutoModelForCausalLM.from_pretrained(
                directory,
                config=config,
                local_files_only=True,
                trust_remote_code=False,
                use_safetensors=True,
                dtype=target_dtype,
                **options,
            )
    except ValueError as exc:
        if "Unrecognized configuration class" not in str(exc):
            raise
        raise ValueError(
            f"{directory} holds a {config.model_type!r} model, which is not a causal language "
            "model (AutoModelForCausalLM has no class for it); codex-ml trains decoder LMs "
            "that predict the next token, such as gpt2, llama, mistral or qwen2."
        ) from None
    return model.to(target_device)


def hf_model(
    path: str | os.PathLike[str] | None = None,
    *,
    dtype: str = "float32",
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    device: str = "cpu",
) -> PreTrainedModel:
    """Any causal LM in a local directory that transformers loads (safetensors, no remote code)."""
    if path is None or not str(path).strip():
        raise ValueError(
            "The 'hf' model needs the directory of a saved causal LM: set model.path=DIR "
            "(a folder written by save_pretrained(), holding config.json and *.safetensors)."
        )
    if trust_remote_code:
        raise ValueError(
            "model.trust_remote_code=true is refused: it would import and run Python code "
            "shipped inside the model directory, with your permissions, every time the model "
            "loads. codex-ml loads only architectures that transformers itself ships; for a "
            "custom one, register your own model factory in a plugin, where the code is "
            "installed and reviewed like any other package."
        )
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(
            f"model.path: {directory} is not a directory; point it at a folder written by "
            "save_pretrained() (config.json and model.safetensors)."
        )
    return load_causal_lm(
        directory, device=device, dtype=dtype, attn_implementation=attn_implementation
    )


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


def _read_config(directory: Path) -> PretrainedConfig:
    """The model's config; custom code it asks for is refused, not run."""
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(
            f"{directory} has no config.json, so transformers cannot tell which architecture "
            "it holds; save the model there with save_pretrained()."
        )
    try:
        return AutoConfig.from_pretrained(directory, local_files_only=True, trust_remote_code=False)
    except ValueError as exc:
        raise ValueError(
            f"{directory}: transformers {_transformers_version()} cannot load this model's "
            f"architecture without running code from the model directory "
            f"(trust_remote_code), which codex-ml refuses ({' '.join(str(exc).split())[:200]}). "
            "Use a transformers release that ships the architecture, or register a model "
            "factory for it in a plugin."
        ) from None


@contextmanager
def _no_progress_bar() -> Iterator[None]:
    """No "Loading weights" bar on stderr: a run's output, or its one-paragraph error, is ours."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


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
