"""``training.compile=true``: compiled training matches eager; checkpoints never see the wrapper."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_model

from codex_ml.models.decoder_only import build_decoder_only
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training import FunctionalTrainer, load_checkpoint, save_checkpoint
from codex_ml.training.checkpoint import read_weights
from codex_ml.training.compile import strip_compile_prefixes, uncompiled

RECORDS = [f"Line {i}: a compiled step computes what the eager step computes." for i in range(80)]


def tiny_model(seed: int = 0) -> torch.nn.Module:
    return build_decoder_only(n_layer=1, n_head=2, n_embd=32, block_size=32, seed=seed)


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


def losses(result) -> list[float]:
    return [r["loss"] for r in result.history if r["event"] == "log"]


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# -- fast: no compilation runs (torch.compile builds nothing until the first call) --------------


def test_a_compiled_models_checkpoint_has_plain_names_and_loads_into_an_eager_model(tmp_path):
    model = tiny_model()
    wrapped = torch.compile(model)
    assert any(k.startswith("_orig_mod.") for k in wrapped.state_dict())  # what is avoided
    assert uncompiled(wrapped) is model
    path = save_checkpoint(tmp_path, step=1, model=wrapped, state={}, config={}, keep=1)
    eager = tiny_model(seed=1)
    load_checkpoint(path, eager)
    assert same_weights(eager, model)
    # ...and an eager model's checkpoint loads into a compiled one.
    other = torch.compile(tiny_model(seed=2))
    load_checkpoint(path, other)
    assert same_weights(uncompiled(other), model)


def test_names_a_compiled_model_wrote_are_read_without_the_prefix(tmp_path):
    model = tiny_model()
    wrapped = torch.compile(model)
    save_model(wrapped, str(tmp_path / "model.safetensors"))  # as another tool would
    weights = read_weights(tmp_path / "model.safetensors", tiny_model(seed=3))
    assert weights.keys() == model.state_dict().keys()  # tied lm_head.weight restored too
    assert strip_compile_prefixes({"h.0._orig_mod.w": 1, "_orig_mod.b": 2}) == {"h.0.w": 1, "b": 2}


def test_compile_must_be_a_bool():
    with pytest.raises(ValueError, match="compile='yes' must be true or false"):
        trainer(compile="yes")


# -- one real compilation (CPU inductor, ~10-35 s) --------------------------------------------


def test_compiled_training_matches_eager_and_resumes_eagerly(tmp_path: Path):
    eager_model, compiled_model = tiny_model(), tiny_model()
    eager = trainer(max_steps=6)(eager_model, ByteTokenizer(), RECORDS)
    compiled = trainer(max_steps=6, compile=True, output_dir=str(tmp_path), checkpoint_every=4)(
        compiled_model, ByteTokenizer(), RECORDS
    )
    assert losses(compiled) == pytest.approx(losses(eager), rel=1e-4)
    assert not any(k.startswith("_orig_mod") for k in compiled_model.state_dict())

    # Its checkpoint resumes without compiling, and the run ends where eager training ends.
    resumed_model = tiny_model(seed=7)
    step4 = tmp_path / "checkpoints" / "step-4"
    resumed = trainer(max_steps=6, resume_from=str(step4))(resumed_model, ByteTokenizer(), RECORDS)
    assert losses(resumed)[-1] == pytest.approx(losses(eager)[-1], rel=1e-3)
    for name, tensor in eager_model.state_dict().items():
        torch.testing.assert_close(resumed_model.state_dict()[name], tensor, rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_an_eager_checkpoint_resumes_compiled(tmp_path: Path):
    eager_model = tiny_model()
    eager = trainer(max_steps=6, output_dir=str(tmp_path), checkpoint_every=4)(
        eager_model, ByteTokenizer(), RECORDS
    )
    resumed_model = tiny_model(seed=7)
    step4 = str(tmp_path / "checkpoints" / "step-4")
    resumed = trainer(max_steps=6, compile=True, resume_from=step4, output_dir=str(tmp_path / "r"))(
        resumed_model, ByteTokenizer(), RECORDS
    )
    assert losses(resumed)[-1] == pytest.approx(losses(eager)[-1], rel=1e-3)
    loaded = tiny_model(seed=8)
    load_checkpoint(tmp_path / "r", loaded)
    assert same_weights(loaded, resumed_model)
