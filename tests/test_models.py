"""Models: the decoder-only LM, sampling, parameter counts, and offline Hugging Face models."""

from __future__ import annotations

import json
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported

from pathlib import Path

import pytest
import torch
from cli_helpers import (
    PROMPTS,
    TINY,
    assert_succeeded,
    assert_user_error,
    codex_ml_cli,
    read_jsonl,
    train,
)

from codex_ml.models.decoder_only import (
    DecoderOnlyConfig,
    Rotary,
    build_decoder_only,
    build_minilm,
)
from codex_ml.models.hf import gpt2_offline_model, hf_model, tinyllama_offline_model
from codex_ml.models.parameters import count_parameters
from codex_ml.models.sampling import generate
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.tokenizers.hf import gpt2_offline_tokenizer

VOCAB = ByteTokenizer.vocab_size
SRC = str(Path(__file__).resolve().parents[1] / "src")


pytest_plugins = ["artefact_fixtures"]


@pytest.fixture(autouse=True)
def _clean(clean_environment: None) -> None:
    """Every test here runs without artefact overrides from the outer shell."""


def random_ids(batch: int, length: int, *, seed: int = 0, vocab: int = VOCAB) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


# --- forward and loss -------------------------------------------------------------


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_forward_returns_logits_over_the_vocabulary(positions):
    model = build_minilm(positions=positions, seed=0)
    out = model(random_ids(3, 17))
    assert out.logits.shape == (3, 17, VOCAB)
    assert out.loss is None
    assert torch.isfinite(out.logits).all()


def _hand_shifted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    log_probs = torch.log_softmax(logits[:, :-1], dim=-1)
    targets = labels[:, 1:]
    keep = targets != -100
    picked = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(picked * keep).sum() / keep.sum()


def test_loss_is_the_shifted_cross_entropy_ignoring_minus_100():
    model = build_minilm(seed=0)
    ids = random_ids(2, 12)
    labels = ids.clone()
    labels[0, 5:8] = -100
    out = model(ids, labels=labels)
    torch.testing.assert_close(out.loss, _hand_shifted_cross_entropy(out.logits, labels))


def test_loss_ignores_padded_positions():
    model = build_minilm(seed=0)
    tok = ByteTokenizer()
    batch = tok.batch_encode(["a longer line of text", "short"])
    ids, mask = torch.tensor(batch["input_ids"]), torch.tensor(batch["attention_mask"])
    out = model(ids, attention_mask=mask, labels=ids)
    labels = ids.masked_fill(mask == 0, -100)
    torch.testing.assert_close(out.loss, _hand_shifted_cross_entropy(out.logits, labels))


def test_right_padding_leaves_the_real_tokens_logits_unchanged():
    model = build_minilm(seed=0)
    tok = ByteTokenizer()
    batch = tok.batch_encode(["a longer line of text", "short"])
    ids, mask = torch.tensor(batch["input_ids"]), torch.tensor(batch["attention_mask"])
    padded = model(ids, attention_mask=mask).logits[1, :5]
    alone = model(torch.tensor([tok.encode("short")])).logits[0]
    torch.testing.assert_close(padded, alone)


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_attention_is_causal(positions):
    model = build_minilm(positions=positions, seed=0)
    ids = random_ids(1, 20)
    changed = ids.clone()
    changed[0, 12] = (changed[0, 12] + 1) % VOCAB
    before, after = model(ids).logits, model(changed).logits
    torch.testing.assert_close(before[:, :12], after[:, :12])
    assert not torch.allclose(before[:, 12:], after[:, 12:])


def test_rope_scores_depend_only_on_the_relative_position():
    rotary = Rotary(head_dim=8, block_size=16)
    q, k = torch.randn(8), torch.randn(8)

    def score(q_pos: int, k_pos: int) -> torch.Tensor:
        qs, ks = torch.zeros(1, 1, 16, 8), torch.zeros(1, 1, 16, 8)
        qs[0, 0, q_pos], ks[0, 0, k_pos] = q, k
        return rotary(qs)[0, 0, q_pos] @ rotary(ks)[0, 0, k_pos]

    torch.testing.assert_close(score(3, 1), score(12, 10))
    assert not torch.allclose(score(3, 1), score(3, 2))


def test_positions_choose_rotary_or_a_learned_table():
    rope, learned = build_minilm(seed=0), build_minilm(positions="learned", seed=0)
    assert rope.wpe is None
    assert learned.wpe.weight.shape == (128, 64)
    assert all(block.attn.rotary is None for block in learned.blocks)
    ids = random_ids(1, 10)
    with_rotary = rope(ids).logits
    for block in rope.blocks:
        block.attn.rotary = None
    assert not torch.allclose(with_rotary, rope(ids).logits)


def test_sequences_longer_than_block_size_are_refused():
    model = build_minilm(block_size=8)
    with pytest.raises(ValueError, match="block_size=8"):
        model(random_ids(1, 9))


# --- sizes, parameters, placement --------------------------------------------------


def _expected_parameters(c: DecoderOnlyConfig) -> int:
    per_block = 2 * c.n_embd + 4 * c.n_embd**2 + 8 * c.n_embd**2  # two norms, attention, MLP
    learned = c.block_size * c.n_embd if c.positions == "learned" else 0
    return c.vocab_size * c.n_embd + learned + c.n_layer * per_block + c.n_embd


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_parameter_count_matches_the_architecture(positions):
    model = build_decoder_only(positions=positions)
    expected = _expected_parameters(model.config)
    assert model.num_parameters() == count_parameters(model) == expected
    embeddings = model.config.vocab_size * model.config.n_embd
    if positions == "learned":
        embeddings += model.config.block_size * model.config.n_embd
    assert model.num_parameters(exclude_embeddings=True) == expected - embeddings


def test_minilm_is_well_under_a_million_parameters():
    model = build_minilm()
    assert model.num_parameters() < 1_000_000
    assert model.num_parameters() < build_decoder_only().num_parameters()


def test_minilm_kwargs_override_the_preset():
    model = build_minilm(n_layer=3, n_embd=32, block_size=64, positions="learned")
    c = model.config
    assert (c.n_layer, c.n_embd, c.block_size, c.positions) == (3, 32, 64, "learned")
    assert len(model.blocks) == 3


def test_embeddings_are_tied_unless_asked_otherwise():
    tied = build_minilm()
    assert tied.lm_head.weight is tied.wte.weight
    untied = build_minilm(tie_embeddings=False)
    assert untied.lm_head.weight is not untied.wte.weight
    assert untied.num_parameters() - tied.num_parameters() == VOCAB * 64


def test_count_parameters_works_on_any_module():
    layer = torch.nn.Linear(3, 4)
    assert count_parameters(layer) == 16
    layer.bias.requires_grad_(False)
    assert count_parameters(layer, trainable_only=True) == 12


def test_seed_makes_weights_reproducible_without_touching_the_global_rng():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b = build_minilm(seed=7), build_minilm(seed=7)
    assert torch.rand(1) == expected_next
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.wte.weight, build_minilm(seed=8).wte.weight)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_dtype_kwarg_sets_the_weights_precision(dtype):
    model = build_minilm(dtype=dtype)
    assert {p.dtype for p in model.parameters()} == {getattr(torch, dtype)}
    assert model(random_ids(1, 8)).logits.dtype == getattr(torch, dtype)


def test_device_auto_picks_cuda_only_when_available():
    model = build_minilm(device="auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(model.parameters()).device.type == expected
    assert next(build_minilm(device="cpu").parameters()).device.type == "cpu"


def test_unusable_device_or_dtype_is_a_clear_error():
    with pytest.raises(ValueError, match="dtype='int8'"):
        build_minilm(dtype="int8")
    with pytest.raises(ValueError, match="device='toaster'"):
        build_minilm(device="toaster")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            build_minilm(device="cuda")


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"n_embd": 30, "n_head": 4}, "n_embd"),
        ({"n_layer": 0}, "n_layer"),
        ({"vocab_size": -5}, "vocab_size"),
        ({"block_size": 2.5}, "block_size"),
        ({"n_head": 0}, "n_head"),
        ({"positions": "alibi"}, "positions"),
        ({"dropout": 1.0}, "dropout"),
        ({"n_embd": 6, "n_head": 2}, "positions='rope' needs an even head size"),
        ({"seed": "abc"}, "seed"),
    ],
)
def test_invalid_sizes_name_the_argument(kwargs, named):
    with pytest.raises(ValueError, match=named):
        build_minilm(**kwargs)


# --- generation ----------------------------------------------------------------------


def test_greedy_generation_is_deterministic_and_picks_the_argmax():
    model = build_minilm(seed=0)
    prompt = random_ids(2, 5)
    first = generate(model, prompt, max_new_tokens=6, temperature=0)
    second = model.generate(prompt, max_new_tokens=6, temperature=0)
    assert first.shape == (2, 11)
    assert torch.equal(first, second)
    assert torch.equal(first[:, :5], prompt)
    for step in range(5, 11):
        assert torch.equal(first[:, step], model(first[:, :step]).logits[:, -1].argmax(-1))


def test_sampling_is_reproducible_with_a_generator_and_respects_top_k():
    model = build_minilm(seed=0)
    prompt = random_ids(1, 4)

    def sample(seed):
        gen = torch.Generator().manual_seed(seed)
        return generate(model, prompt, max_new_tokens=8, top_k=1, generator=gen)

    # top_k=1 leaves one candidate: sampling equals greedy.
    assert torch.equal(sample(0), generate(model, prompt, max_new_tokens=8, temperature=0))
    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = generate(model, prompt, max_new_tokens=8, temperature=2.0, generator=gen_a)
    b = generate(model, prompt, max_new_tokens=8, temperature=2.0, generator=gen_b)
    assert torch.equal(a, b)


def test_generation_stops_at_eos_and_pads_finished_rows():
    model = build_minilm(seed=0)
    prompt = random_ids(1, 4)
    greedy = generate(model, prompt, max_new_tokens=10, temperature=0)
    eos = int(greedy[0, 6])  # pretend the third new token ends the text
    stopped = generate(model, prompt, max_new_tokens=10, temperature=0, eos_id=eos)
    first_eos = int((greedy[0, 4:] == eos).nonzero()[0]) + 4
    assert torch.equal(stopped[0], greedy[0, : first_eos + 1])


def test_generation_crops_the_context_to_block_size_and_restores_train_mode():
    model = build_minilm(block_size=8, positions="learned", seed=0, dropout=0.1)
    model.train()
    out = model.generate(random_ids(1, 6), max_new_tokens=12, temperature=0)
    assert out.shape == (1, 18)
    assert model.training
    # A 1-D prompt gives a 1-D answer.
    assert generate(model, torch.tensor([1, 2, 3]), max_new_tokens=2, temperature=0).shape == (5,)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"temperature": -1.0}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"max_new_tokens": -1}, "max_new_tokens"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs, named):
    with pytest.raises(ValueError, match=named):
        generate(build_minilm(), random_ids(1, 3), **kwargs)


# --- training signal -------------------------------------------------------------------


def test_a_few_dozen_optimizer_steps_lower_the_loss_clearly():
    tok = ByteTokenizer()
    model = build_minilm(seed=0)
    ids = torch.tensor([tok.encode("the cat sat on the mat. " * 5)] * 4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = model(ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.4 * losses[0]


# --- offline Hugging Face models --------------------------------------------------------


def test_gpt2_offline_model_loads_from_the_path_kwarg_and_computes_a_loss(tree):
    path = tree / "artifacts/models/gpt2"
    model = gpt2_offline_model(path)
    tok = gpt2_offline_tokenizer(path)
    ids = torch.tensor([tok.encode("the quick brown fox")])
    out = model(ids, labels=ids)
    assert out.logits.shape == (1, ids.size(1), tok.vocab_size)
    assert torch.isfinite(out.loss)
    assert model.num_parameters() == count_parameters(model) > 0


def test_generate_works_on_a_hugging_face_model(tree):
    model = gpt2_offline_model(tree / "artifacts/models/gpt2")
    prompt = torch.tensor([[1, 2, 3]])
    out = generate(model, prompt, max_new_tokens=4, temperature=0)
    assert out.shape == (1, 7)
    assert torch.equal(out, generate(model, prompt, max_new_tokens=4, temperature=0))


def test_tinyllama_offline_model_found_through_the_per_artefact_env_var(tree, monkeypatch):
    monkeypatch.setenv("CODEX_ML_TINYLLAMA_DIR", str(tree / "artifacts/models/tinyllama"))
    model = tinyllama_offline_model(dtype="bfloat16")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert next(model.parameters()).dtype == torch.bfloat16


def test_offline_models_found_through_the_shared_env_var(tree, monkeypatch):
    monkeypatch.setenv("CODEX_ML_ARTIFACTS_DIR", str(tree / "artifacts"))
    assert type(gpt2_offline_model()).__name__ == "GPT2LMHeadModel"
    assert type(tinyllama_offline_model()).__name__ == "LlamaForCausalLM"


def test_offline_model_found_at_the_default_path(tree, monkeypatch):
    monkeypatch.setenv("CODEX_ML_PROJECT_ROOT", str(tree))
    model = tinyllama_offline_model()
    ids = torch.tensor([[1, 5, 9, 2]])
    assert model(ids).logits.shape == (1, 4, model.config.vocab_size)


def test_missing_model_files_list_every_path_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEX_ML_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setenv("CODEX_ML_GPT2_DIR", str(tmp_path / "mine"))
    with pytest.raises(FileNotFoundError) as info:
        gpt2_offline_model()
    message = str(info.value)
    assert "'gpt2-offline'" in message
    assert str(tmp_path / "mine") in message
    assert str(tmp_path / "artifacts/models/gpt2") in message


def test_pickle_only_weights_are_refused_without_unpickling(tree, tmp_path):
    source = tree / "artifacts/models/gpt2"
    (tmp_path / "config.json").write_bytes((source / "config.json").read_bytes())
    # Not a valid pickle at all: reading it would fail differently from our refusal.
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"pytorch_model\.bin.*never unpickles.*safetensors"):
        gpt2_offline_model(tmp_path)


def test_directory_without_weights_is_a_clear_error(tree, tmp_path):
    (tmp_path / "config.json").write_bytes(
        (tree / "artifacts/models/gpt2/config.json").read_bytes()
    )
    with pytest.raises(FileNotFoundError, match=r"no model weights \(model\.safetensors\)"):
        gpt2_offline_model(tmp_path)


def test_importing_the_packages_imports_neither_torch_nor_transformers():
    # The registry resolves "codex_ml.models.decoder_only:..." lazily; importing the
    # parent packages on the way must stay free.
    code = (
        "import sys, codex_ml.models, codex_ml.tokenizers, codex_ml.artefacts; "
        "heavy = {'torch', 'transformers'} & set(sys.modules); assert not heavy, heavy; "
        "codex_ml.models.build_minilm; assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": SRC})


# --- the hf key: any local causal LM ------------------------------------------------------


def test_hf_model_loads_any_local_causal_lm_with_its_architecture(tree):
    llama = hf_model(tree / "artifacts/models/tinyllama", dtype="bfloat16")
    gpt2 = hf_model(str(tree / "artifacts/models/gpt2"), attn_implementation="eager")
    assert (llama.config.model_type, gpt2.config.model_type) == ("llama", "gpt2")
    assert next(llama.parameters()).dtype == torch.bfloat16
    assert gpt2.config._attn_implementation == "eager"


def test_hf_model_refuses_trust_remote_code_and_says_why(tree):
    with pytest.raises(ValueError, match=r"trust_remote_code=true is refused.*run Python code"):
        hf_model(tree / "artifacts/models/gpt2", trust_remote_code=True)


def test_hf_model_needs_a_path(tmp_path):
    with pytest.raises(ValueError, match=r"model\.path=DIR"):
        hf_model()
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        hf_model(tmp_path / "missing")


def test_an_architecture_only_remote_code_provides_is_refused(tree, tmp_path):
    source = tree / "artifacts/models/gpt2"
    for name in ("model.safetensors", "config.json"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    config = json.loads((tmp_path / "config.json").read_text())
    config |= {"model_type": "my-own-lm", "auto_map": {"AutoModelForCausalLM": "modeling.MyLM"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "modeling.py").write_text("raise SystemExit('remote code ran')\n")
    with pytest.raises(ValueError, match=r"without running code from the model directory"):
        hf_model(tmp_path)


def _save_gpt2(directory: Path, vocab_size: int) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab_size, n_positions=64, n_embd=16, n_layer=1, n_head=2,
        bos_token_id=None, eos_token_id=None,
    )  # fmt: skip
    GPT2LMHeadModel(config).save_pretrained(directory)
    return directory


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(("tinyllama", "llama"), id="llama"),
        pytest.param(("gpt2", "gpt2"), id="gpt2", marks=pytest.mark.slow),
    ],
)
def hf_run(request, tree, tmp_path_factory):
    """(model_type, a 3-step run) of a saved transformers model through ``model=offline/hf``."""
    name, model_type = request.param
    directory = tree / "artifacts/models" / name
    run = train(
        tmp_path_factory.mktemp("hf-runs") / name,
        *TINY,
        "tokenizer=offline/hf",
        f"tokenizer.name_or_path={directory}",
        "model=offline/hf",
        f"model.path={directory}",
        "training.max_steps=3",
        "training.eval_every=0",
        "run.max_new_tokens=8",
    )
    return model_type, run


def test_a_saved_transformers_model_trains_through_the_hf_key(hf_run):
    model_type, run = hf_run
    summary = run.summary
    assert summary["status"] == "completed" and summary["steps"] == 3
    model = summary["components"]["model"]
    assert (model["key"], model["model_type"]) == ("hf", model_type)
    samples = read_jsonl(run.dir / "samples.jsonl")
    assert len(samples) == len(PROMPTS) and all(s["completion"] for s in samples)


def test_a_run_of_the_hf_key_evaluates_and_generates(hf_run, tmp_path):
    run_dir = hf_run[1].dir
    evaluated = codex_ml_cli("evaluate", str(run_dir), cwd=tmp_path)
    assert_succeeded(evaluated)
    report = json.loads((run_dir / "evaluation.json").read_text())
    assert isinstance(report["metrics"]["ppl"], float) and report["samples"]
    generated = codex_ml_cli(
        "generate", str(run_dir), "--prompt", "The quick", "--max-new-tokens", "6",
        "--temperature", "0", cwd=tmp_path,
    )  # fmt: skip
    assert_succeeded(generated)
    assert generated.stdout.startswith("The quick")


def test_a_tokenizer_larger_than_the_model_embedding_is_a_config_error(tree, tmp_path):
    small = _save_gpt2(tmp_path / "small-gpt2", vocab_size=200)
    tokenizer = tree / "artifacts/models/gpt2"
    ids = len(json.loads((tokenizer / "tokenizer.json").read_text())["model"]["vocab"])
    result = codex_ml_cli(
        "train", f"hydra.run.dir={tmp_path / 'run'}", "tokenizer=offline/gpt2",
        f"tokenizer.path={tokenizer}", "model=offline/hf", f"model.path={small}",
        cwd=tmp_path,
    )  # fmt: skip
    message = assert_user_error(
        result, "train", "'gpt2-offline'", "'hf'", f"{ids:,} token ids", "200 rows"
    )
    assert "index out of range" not in message
    assert not (tmp_path / "run").exists()
