"""The offline catalogue's metrics: hand-computed values, reference implementations, properties."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score

from codex_ml.metrics import (
    build_distinct_1,
    build_distinct_2,
    build_exact_match,
    build_f1,
    build_perplexity,
    build_token_accuracy,
    build_weighted_accuracy,
    distinct_n,
)
from codex_ml.metrics.text_overlap import exact_match_score, f1_score, normalize_answer
from codex_ml.resources import offline_data_dir

accuracy = build_token_accuracy()
ppl = build_perplexity()
exact_match = build_exact_match()
f1 = build_f1()
dist_1 = build_distinct_1()
dist_2 = build_distinct_2()

words = st.text(alphabet="abc the,.!", max_size=30)


# --- factories ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factory",
    [
        build_token_accuracy,
        build_perplexity,
        build_exact_match,
        build_f1,
        build_distinct_1,
        build_distinct_2,
        build_weighted_accuracy,
    ],
)
def test_default_factory_call_returns_the_same_prebuilt_metric(factory):
    assert factory() is factory()
    assert factory.__doc__ and "\n" not in factory.__doc__.strip()


def test_importing_the_metrics_does_not_import_torch():
    code = (
        "import sys, math, codex_ml.metrics as m\n"
        "assert m.build_perplexity()([math.log(3)]) > 2.99\n"
        "assert m.build_token_accuracy()([1, 2], [1, 3]) == 0.5\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- accuracy@token ----------------------------------------------------------------------


def test_token_accuracy_on_flat_and_nested_lists():
    assert accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    assert accuracy([[1, 2], [3]], [[1, 0], [3]]) == pytest.approx(2 / 3)  # ragged batch


def test_token_accuracy_skips_ignore_index():
    assert accuracy([1, 9, 9], [1, -100, -100]) == 1.0
    assert build_token_accuracy(ignore_index=0)([1, 9, 3], [1, 0, 4]) == 0.5


def test_token_accuracy_takes_argmax_of_logits():
    logits = [[0.1, 0.9, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 5.0]]
    assert accuracy(logits, [1, 0, 0]) == pytest.approx(2 / 3)


def test_token_accuracy_on_numpy_and_torch_matches_sklearn():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 7, 11))
    targets = rng.integers(0, 11, size=(4, 7))
    targets[0, :3] = -100
    keep = targets != -100
    expected = accuracy_score(targets[keep], logits.argmax(-1)[keep])
    assert accuracy(logits, targets) == pytest.approx(expected)
    assert accuracy(torch.tensor(logits), torch.tensor(targets)) == pytest.approx(expected)
    assert accuracy(logits.tolist(), targets.tolist()) == pytest.approx(expected)
    assert accuracy(torch.tensor(logits), targets.tolist()) == pytest.approx(expected)


def test_token_accuracy_without_valid_positions_is_a_clear_error():
    with pytest.raises(ValueError, match="ignore_index=-100"):
        accuracy([1, 2], [-100, -100])
    with pytest.raises(ValueError, match="ignore_index"):
        accuracy(torch.tensor([1]), torch.tensor([-100]))


def test_token_accuracy_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="same shape"):
        accuracy([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        accuracy(np.zeros((2, 3)), np.zeros((3, 2)))


@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(-1, 3)), min_size=1).filter(
        lambda pairs: any(t != -1 for _, t in pairs)
    )
)
def test_token_accuracy_is_a_fraction(pairs):
    preds, targets = zip(*pairs, strict=True)
    value = build_token_accuracy(ignore_index=-1)(list(preds), list(targets))
    assert 0.0 <= value <= 1.0


# --- ppl ---------------------------------------------------------------------------------


def test_ppl_from_nlls():
    assert ppl([math.log(2)] * 4) == pytest.approx(2.0)
    assert ppl([0.0, math.log(4)], None) == pytest.approx(2.0)
    assert ppl(np.array([math.log(5)] * 3)) == pytest.approx(5.0)


def test_ppl_overflow_is_inf():
    assert ppl([1000.0, 2000.0]) == math.inf


@pytest.mark.parametrize("count", [1, 2, 3, 8])
def test_ppl_of_the_largest_finite_nlls_is_inf_not_an_overflow_error(count):
    assert ppl([sys.float_info.max] * count) == math.inf
    assert ppl([sys.float_info.max / 2, 2.0]) == math.inf


def test_ppl_from_logits_matches_torch_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 13)
    targets = torch.randint(0, 13, (3, 5))
    targets[1, 2:] = -100
    expected = math.exp(F.cross_entropy(logits.reshape(-1, 13), targets.reshape(-1)).item())
    assert ppl(logits, targets) == pytest.approx(expected, rel=1e-5)
    assert ppl(logits.half(), targets) == pytest.approx(expected, rel=1e-2)
    assert ppl(logits.tolist(), targets.tolist()) == pytest.approx(expected, rel=1e-5)


def test_ppl_of_a_perfect_model_is_one():
    logits = torch.full((4, 3), -1e4)
    logits[torch.arange(4), torch.tensor([0, 1, 2, 1])] = 1e4
    assert ppl(logits, torch.tensor([0, 1, 2, 1])) == pytest.approx(1.0)


def test_ppl_errors_are_clear():
    with pytest.raises(ValueError, match="no negative log-likelihoods"):
        ppl([])
    with pytest.raises(TypeError, match="numbers"):
        ppl(["a"])
    with pytest.raises(ValueError, match=r"shape \(\.\.\., vocab\)"):
        ppl(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="ignore_index=-100"):
        ppl(torch.zeros(2, 3), torch.full((2,), -100))


@given(st.lists(st.floats(0, 50), min_size=1))
def test_ppl_of_non_negative_nlls_is_at_least_one(nlls):
    assert ppl(nlls) >= 1.0


# --- exact_match / f1 --------------------------------------------------------------------


def test_normalisation_is_squad_style():
    assert normalize_answer("  The Cat, an  apple!  ") == "cat apple"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words


def test_exact_match_hand_computed():
    assert exact_match(["The cat.", "a dog", "bird"], ["cat", "dog", "fish"]) == pytest.approx(
        2 / 3
    )
    assert exact_match("Paris!", "paris") == 1.0


def test_f1_hand_computed():
    # pred tokens {big, cat}, target {cat}: precision 1/2, recall 1 -> F1 2/3
    assert f1_score("a big cat", "the cat") == pytest.approx(2 / 3)
    assert f1(["a big cat", "dog"], ["the cat", "cat"]) == pytest.approx(1 / 3)
    assert f1_score("cat cat dog", "cat dog dog") == pytest.approx(2 / 3)  # multiset overlap


def test_f1_empty_answers():
    assert f1_score("", "the") == 1.0  # both normalise to nothing
    assert f1_score("", "cat") == 0.0
    assert f1_score("cat", "") == 0.0


def test_text_overlap_input_errors():
    with pytest.raises(ValueError, match="2 predictions and 1 references"):
        f1(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no predictions"):
        exact_match([], [])
    with pytest.raises(TypeError, match="pair 1"):
        exact_match(["a", 3], ["a", "3"])
    with pytest.raises(TypeError, match="both as strings"):
        f1("a", ["a"])


@given(st.lists(st.tuples(words, words), min_size=1))
def test_exact_match_and_f1_are_fractions_with_f1_at_least_em(pairs):
    preds, targets = (list(x) for x in zip(*pairs, strict=True))
    assert 0.0 <= exact_match(preds, targets) <= 1.0
    assert 0.0 <= f1(preds, targets) <= 1.0
    for pred, target in pairs:
        assert f1_score(pred, target) >= exact_match_score(pred, target)


# --- dist-n ------------------------------------------------------------------------------


def test_distinct_hand_computed():
    preds = ["a b a b", "a b"]
    assert dist_1(preds) == pytest.approx(2 / 6)
    # bigrams: (a b) (b a) (a b) | (a b) -> 2 distinct of 4; none cross predictions
    assert dist_2(preds, None) == pytest.approx(2 / 4)
    assert dist_2(["x", "y"]) == 0.0  # no bigram inside either prediction, none across
    assert distinct_n(3)(["a b c a b c"]) == pytest.approx(3 / 4)


def test_distinct_without_ngrams_is_zero():
    assert dist_1([]) == 0.0
    assert dist_1(["   "]) == 0.0


def test_distinct_rejects_non_text():
    with pytest.raises(TypeError, match="prediction 1"):
        dist_1(["a", [1, 2]])
    with pytest.raises(ValueError, match="positive integer"):
        distinct_n(0)


@given(st.lists(words))
def test_distinct_is_a_fraction(preds):
    assert 0.0 <= dist_1(preds) <= 1.0
    assert 0.0 <= dist_2(preds) <= 1.0


# --- offline:weighted-accuracy -----------------------------------------------------------


def _write(tmp_path, payload, name="weights.json"):
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def test_weighted_accuracy_hand_computed(tmp_path):
    path = _write(tmp_path, {"weights": {"a": 3.0, "b": 1.0}})
    metric = build_weighted_accuracy(weights_path=path)
    # weights of targets: a=3, b=1, c=1 (unknown); correct on a and c -> 4 / 5
    assert metric(["a", "x", "c"], ["a", "b", "c"]) == pytest.approx(4 / 5)


def test_weighted_accuracy_compares_labels_as_strings(tmp_path):
    metric = build_weighted_accuracy(weights_path=_write(tmp_path, {"weights": {"1": 2.0}}))
    assert metric([1, 0], ["1", "0"]) == 1.0
    assert metric(np.array([1, 1]), [1, 0]) == pytest.approx(2 / 3)


def _shipped_weights_path():
    return offline_data_dir() / "weighted_accuracy.json"


def test_weighted_accuracy_matches_sklearn_sample_weight():
    rng = np.random.default_rng(1)
    labels = ["positive", "negative", "neutral", "question", "unsafe", "other"]
    targets = list(rng.choice(labels, size=50))
    preds = list(rng.choice(labels, size=50))
    table = json.loads(_shipped_weights_path().read_text())["weights"]
    weights = [table.get(t, 1.0) for t in targets]
    expected = accuracy_score(targets, preds, sample_weight=weights)
    assert build_weighted_accuracy()(preds, targets) == pytest.approx(expected)


def test_shipped_weights_file_is_documented():
    data = json.loads(_shipped_weights_path().read_text())
    assert data["description"] and data["default_weight"] == 1.0 and data["weights"]


def test_weights_are_read_once_per_factory_call(tmp_path):
    path = _write(tmp_path, {"weights": {"a": 0.0}})
    metric = build_weighted_accuracy(weights_path=path)
    path.write_text("not json any more")
    assert metric(["b", "a"], ["b", "a"]) == 1.0  # still the weights it was built with


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], '"weights" object'),
        ({"weights": {"a": -1}}, "negative"),
        ({"weights": {"a": "heavy"}}, "finite number"),
        ({"weights": {"a": True}}, "finite number"),
        ({"weights": {}, "default_weight": -2}, "default_weight"),
    ],
)
def test_malformed_weights_file_is_an_error_naming_it(tmp_path, payload, message):
    path = _write(tmp_path, payload)
    with pytest.raises(ValueError, match=message) as info:
        build_weighted_accuracy(weights_path=path)
    assert str(path) in str(info.value)


def test_missing_weights_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.json"):
        build_weighted_accuracy(weights_path=tmp_path / "missing.json")


def test_weighted_accuracy_input_errors(tmp_path):
    metric = build_weighted_accuracy(weights_path=_write(tmp_path, {"weights": {"z": 0}}))
    with pytest.raises(ValueError, match="2 predictions and 1 targets"):
        metric(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="weight 0"):
        metric(["z"], ["z"])
