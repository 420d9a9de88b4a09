"""``precision``: fp16 with a gradient scaler on CUDA, refused clearly on the CPU; the scaler's
state travels in checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codex_ml.models.decoder_only import build_decoder_only
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training import FunctionalTrainer, load_checkpoint
from codex_ml.training import functional as functional_module
from codex_ml.training.precision import autocast_for, check_precision, grad_scaler_for

RECORDS = [
    f"Line {i}: the loss is scaled, the gradients unscaled, then clipped." for i in range(80)
]


def trainer(**settings) -> FunctionalTrainer:
    return FunctionalTrainer(
        **{
            "max_steps": 4,
            "batch_size": 4,
            "block_size": 32,
            "warmup_steps": 1,
            "log_every": 1,
            "device": "cpu",
            "num_threads": 1,
            **settings,
        }
    )


def tiny_model(seed: int = 0) -> torch.nn.Module:
    return build_decoder_only(n_layer=1, n_head=2, n_embd=32, block_size=32, seed=seed)


@pytest.mark.skipif(torch.cuda.is_available(), reason="device=auto is a GPU here")
@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_fp16_on_the_cpu_is_one_paragraph_naming_the_setting_and_what_to_use(device):
    with pytest.raises(ValueError) as raised:
        trainer(precision="fp16", device=device)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("precision=fp16 (training.precision) needs a CUDA GPU")
    assert "precision=bf16" in message and "precision=fp32" in message


def test_fp16_with_fsdp_is_refused():
    cuda = torch.device("cuda")  # only named: nothing runs on it
    check_precision("fp16", cuda, strategy="ddp")
    with pytest.raises(ValueError, match="precision=fp16 with strategy=fsdp"):
        check_precision("fp16", cuda, strategy="fsdp")


def test_an_unknown_precision_lists_the_choices():
    with pytest.raises(ValueError, match="auto, fp32, bf16, fp16"):
        trainer(precision="fp8")


def test_only_fp16_gets_a_scaler_and_auto_is_fp32_on_the_cpu():
    cpu = torch.device("cpu")
    assert all(grad_scaler_for(cpu, p) is None for p in ("auto", "fp32", "bf16"))
    assert isinstance(autocast_for(cpu, "auto"), type(autocast_for(cpu, "fp32")))


def test_the_scalers_state_is_checkpointed_and_restored(tmp_path: Path, monkeypatch):
    """The scaler path, on the CPU: a CPU GradScaler stands in for the CUDA one fp16 gets."""
    scalers: list[torch.amp.GradScaler] = []

    def cpu_scaler(device, precision):
        scalers.append(torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=2))
        return scalers[-1]

    monkeypatch.setattr(functional_module, "grad_scaler_for", cpu_scaler)
    plain = trainer(max_steps=6)(tiny_model(), ByteTokenizer(), RECORDS)
    scaled = trainer(max_steps=6, output_dir=str(tmp_path), checkpoint_every=4)(
        tiny_model(), ByteTokenizer(), RECORDS
    )
    # fp32 gradients never overflow: scaling changes nothing but rounding.
    logs = [r["loss"] for r in scaled.history if r["event"] == "log"]
    assert logs == pytest.approx([r["loss"] for r in plain.history if r["event"] == "log"], 1e-5)
    step4 = load_checkpoint(tmp_path / "checkpoints" / "step-4", tiny_model())
    assert step4.state["scaler"]["scale"] == 2.0**12  # grew twice in four steps

    resumed = trainer(max_steps=6, resume_from=str(step4.path))(
        tiny_model(), ByteTokenizer(), [*RECORDS]
    )
    assert resumed.steps == 6
    assert scalers[-1].get_scale() == 2.0**13  # restored at 2**12, grew once more


def test_without_fp16_no_scaler_state_is_saved(tmp_path: Path):
    trainer(max_steps=2, output_dir=str(tmp_path))(tiny_model(), ByteTokenizer(), RECORDS)
    assert "scaler" not in load_checkpoint(tmp_path, tiny_model()).state
