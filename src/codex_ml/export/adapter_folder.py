"""``--adapter-only``: an adapter run as a folder that ``peft`` loads onto the base model.

The folder is what ``PeftModel.save_pretrained`` writes (``adapter_config.json``,
``adapter_model.safetensors``), plus the tokenizer files. The config's
``base_model_name_or_path`` names the base the adapter goes on, which
``PeftModel.from_pretrained(base, folder)`` needs built and
``AutoPeftModelForCausalLM.from_pretrained(folder)`` loads from there:

- a Hugging Face base (``model=offline/hf``, ``gpt2-offline``...): the folder
  the run loaded it from, as an absolute path (the run never wrote to it);
- codex-ml's decoder, whose base weights exist in no folder (they are built
  from ``model.seed``): ``base/`` inside the export, the base written as a
  merged export would write it (GPT-2 or GPT-NeoX), and the adapter renamed
  onto that architecture (:mod:`codex_ml.export.decoder_adapter`). The path
  recorded is where ``base/`` ends up (``--out``/base): move the two together.

Like every export it checks itself: the base is loaded by ``transformers``,
the folder by ``peft``, and greedy generation must give the text codex-ml
generates from the run's adapted model.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from codex_ml.export.errors import ExportError, ExportMismatchError

#: The base model's folder inside an adapter-only export of codex-ml's decoder.
BASE_DIR = "base"
#: peft's prefix of every weight name in a saved adapter (PeftModel -> LoraModel -> model).
_PEFT_PREFIX = "base_model.model."


def adapter_parts(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's adapter as ``peft`` config fields and weights; refused when it has no such form."""
    from codex_ml.training.checkpoint.trainable import adapted

    note = adapted(model)
    if note is None:
        raise ExportError(
            "--adapter-only: this run trained no adapter (adapter=lora), so there is nothing to "
            "write apart from the model; export without --adapter-only."
        )
    peft_adapter = getattr(note.adapter, "peft_adapter", None)
    if not callable(peft_adapter):
        raise ExportError(
            f"--adapter-only: adapter {note.name!r} has no peft format (it trains the model's "
            "own parameters, or does not offer peft_adapter()); export without "
            "--adapter-only, which writes the whole model with what was trained in place."
        )
    config, weights = peft_adapter(model)
    return dict(config), dict(weights)


def write_adapter_folder(folder: Path, out: Path, model: Any, tokenizer: Any) -> tuple[str, int]:
    """Write the adapter of ``model`` into ``folder`` (to become ``out``), checked.

    Returns what was written and how many prompts the check compared.
    """
    from codex_ml.export.model_files import write_model
    from codex_ml.export.tokenizer_files import write_tokenizer
    from codex_ml.models.decoder_only import DecoderOnlyLM
    from codex_ml.models.sampling import context_length

    config, weights = adapter_parts(model)
    if isinstance(model, DecoderOnlyLM):
        from codex_ml.export.decoder_adapter import counterpart_adapter

        # The mapping reads each layer's base weight: LoRA's wrappers hand out their base's.
        write_model(folder / BASE_DIR, model, tokenizer)
        write_tokenizer(folder / BASE_DIR, tokenizer, context_length(model))
        config, weights = counterpart_adapter(model, config, weights)
        base_folder, recorded = folder / BASE_DIR, out / BASE_DIR
    else:
        base_folder = recorded = hf_base_folder(model)
    _save_peft_folder(folder, base_folder, recorded, config, weights)
    write_tokenizer(folder, tokenizer, context_length(model))
    verified = _verify(folder, base_folder, model, tokenizer)
    return f"a peft LoRA adapter for {_architecture(base_folder)}", verified


def hf_base_folder(model: Any) -> Path:
    """The folder a Hugging Face base model was loaded from (``name_or_path``), absolute."""
    name = getattr(model, "name_or_path", None)
    folder = Path(str(name)).expanduser() if name else None
    if folder is None or not (folder / "config.json").is_file():
        raise ExportError(
            f"--adapter-only: the base {type(model).__name__} was not loaded from a model "
            f"folder ({name!r} is none), so the adapter could name no base to load onto. "
            "Export without --adapter-only (the adapter merged into the weights)."
        )
    return folder.resolve()


def _save_peft_folder(
    folder: Path, base_folder: Path, recorded: Path, config: dict[str, Any], weights: dict[str, Any]
) -> None:
    """peft's own files, written by peft from the base with the run's weights loaded into it."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    from codex_ml.export.verify import load_exported_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft's advice on fan_in_fan_out and the like
        peft_model = get_peft_model(
            load_exported_model(base_folder), LoraConfig(task_type="CAUSAL_LM", **config)
        )
        loaded = set_peft_model_state_dict(
            peft_model, {_PEFT_PREFIX + name: tensor for name, tensor in weights.items()}
        )
    left_out = [k for k in loaded.missing_keys if ".lora_" in k]
    if loaded.unexpected_keys or left_out:
        raise ExportMismatchError(
            f"peft does not place the run's adapter weights on the base (unexpected: "
            f"{list(loaded.unexpected_keys)[:3]}, left out: {left_out[:3]}); the export was not "
            "kept. This is a bug in codex-ml's export."
        )
    peft_model.peft_config["default"].base_model_name_or_path = str(recorded)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # `recorded` is where base/ will be: not there yet
        peft_model.save_pretrained(folder)
    (folder / "README.md").unlink(missing_ok=True)  # peft's blank model card, naming staging


def _verify(folder: Path, base_folder: Path, model: Any, tokenizer: Any) -> int:
    """peft loads ``folder`` onto the base, and generates what codex-ml generates."""
    from peft import PeftModel

    from codex_ml.export.verify import load_exported_model, verify_folder

    device = next(model.parameters()).device
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = PeftModel.from_pretrained(load_exported_model(base_folder, device), folder)
    return verify_folder(folder, model, tokenizer, exported_model=loaded.eval())


def _architecture(base_folder: Path) -> str:
    import json

    config = json.loads((base_folder / "config.json").read_text())
    return str((config.get("architectures") or [config.get("model_type", "?")])[0])
