"""KV-cached generation: the same tokens as rerunning the context, one position per new token."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported

import pytest
import torch

from codex_ml.models.decoder_only import build_decoder_only, build_minilm
from codex_ml.models.hf import hf_model
from codex_ml.models.sampling import generate

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # ``benchmarks`` is a top-level folder, not installed
    sys.path.insert(0, str(REPO_ROOT))

pytest_plugins = ["artefact_fixtures"]

POSITIONS = ["rope", "learned"]


@pytest.fixture(autouse=True)
def _clean(clean_environment: None) -> None:
    """No artefact overrides from the outer shell."""


def prompt(batch: int = 2, length: int = 5, vocab: int = 259) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(1))


def both(model, ids, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """(cached, uncached) generations with the same arguments and a fresh generator each."""
    runs = []
    for use_cache in (True, False):
        generator = torch.Generator().manual_seed(7)
        runs.append(generate(model, ids, generator=generator, use_cache=use_cache, **kwargs))
    return runs[0], runs[1]


@pytest.mark.parametrize("positions", POSITIONS)
def test_cached_greedy_tokens_equal_the_uncached_ones(positions):
    model = build_decoder_only(positions=positions, block_size=128, seed=0)
    cached, uncached = both(model, prompt(), max_new_tokens=60, temperature=0)
    assert cached.shape == (2, 65)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("positions", POSITIONS)
def test_seeded_sampling_gives_the_same_text_with_and_without_the_cache(positions):
    model = build_minilm(positions=positions, seed=0)
    cached, uncached = both(model, prompt(), max_new_tokens=40, temperature=0.9, top_k=20)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("positions", POSITIONS)
def test_past_the_context_the_cached_path_crops_as_the_uncached_one(positions):
    model = build_minilm(positions=positions, block_size=16, seed=0)
    cached, uncached = both(model, prompt(length=6), max_new_tokens=30, temperature=0)
    assert cached.shape == (2, 36)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("positions", POSITIONS)
def test_a_cache_filled_in_chunks_gives_the_full_forward_logits(positions):
    model = build_minilm(positions=positions, seed=0).eval()
    ids = prompt(length=12)
    cache = model.new_cache(2)
    with torch.no_grad():
        full = model(ids).logits
        chunks = [model(ids[:, a:b], cache=cache).logits for a, b in ((0, 5), (5, 6), (6, 12))]
    assert cache.length == 12
    torch.testing.assert_close(torch.cat(chunks, dim=1), full, rtol=1e-4, atol=1e-5)


def test_each_new_token_runs_one_position_through_the_model():
    model = build_minilm(seed=0)
    lengths: list[int] = []
    model.wte.register_forward_hook(lambda _m, args, _out: lengths.append(args[0].size(1)))
    generate(model, prompt(length=7), max_new_tokens=10, temperature=0)
    assert lengths == [7] + [1] * 9  # the prompt once, then one token at a time


def test_a_cache_does_not_mix_with_a_padding_mask():
    model = build_minilm(seed=0)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match="padded batch"):
        model(prompt(length=3), attention_mask=mask, cache=model.new_cache(2))


def test_a_cache_longer_than_block_size_is_refused():
    model = build_minilm(block_size=8, seed=0)
    cache = model.new_cache(1)
    model(prompt(1, 6), cache=cache)
    with pytest.raises(ValueError, match="exceeds block_size=8"):
        model(prompt(1, 3), cache=cache)


@pytest.mark.parametrize("name", ["tinyllama", "gpt2"])
def test_hugging_face_models_generate_with_their_own_cache_the_same_tokens(tree, name):
    model = hf_model(tree / "artifacts/models" / name)
    ids = prompt(1, 5, vocab=model.config.vocab_size)
    cached, uncached = both(model, ids, max_new_tokens=40, temperature=0)
    assert torch.equal(cached, uncached)
    # Past the 128-token context the cached path crops, as the uncached one always did.
    long_cached, long_uncached = both(model, ids, max_new_tokens=130, temperature=0)
    assert long_cached.shape == (1, 135)
    assert torch.equal(long_cached, long_uncached)


def test_the_benchmark_compares_identical_weights_and_reports_every_goal():
    from benchmarks import generation

    ours, twin = generation.build_pair(generation.QUICK_SIZE, context=32)
    ids = prompt(1, 8)
    assert generation.max_logit_gap(ours, twin, ids) < 1e-4
    section = generation.run(size=generation.QUICK_SIZE, lengths=(4, 8), repeats=1)
    assert len(section.goals) == 2 * 2 + 2  # two variants per length, two flatness goals
    assert "same tokens" in generation.markdown(section)
