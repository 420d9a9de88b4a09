"""The offline:heuristic reward model: one test per rule, the range and determinism."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codex_ml.protocols import RewardModel
from codex_ml.rewards import DEFAULT_BANNED_PHRASES, HeuristicRewardModel
from codex_ml.rewards.heuristic import RULES

model = HeuristicRewardModel()
PROMPT = "How do I bake sourdough bread at home?"


def test_follows_the_reward_model_protocol():
    assert isinstance(model, RewardModel)


def test_explain_reports_every_rule_and_a_total_that_evaluate_returns():
    parts = model.explain(PROMPT, "Bake the sourdough bread because heat sets the crumb.")
    assert list(parts) == [*RULES, "total"]
    assert parts["total"] == pytest.approx(sum(v for k, v in parts.items() if k != "total"))
    assert (
        model.evaluate(PROMPT, "Bake the sourdough bread because heat sets the crumb.")
        == (parts["total"])
    )


@pytest.mark.parametrize("completion", ["", "   ", "\n\t"])
def test_empty_completion_scores_minus_one(completion):
    assert model.evaluate(PROMPT, completion) == -1.0
    assert model.explain(PROMPT, completion)["empty"] == -1.0


def test_explanation_marker_is_rewarded():
    assert model.explain("q", "It rises because yeast makes gas.")["explanation"] == 0.15
    assert model.explain("q", "It rises.")["explanation"] == 0.0


def test_steps_are_rewarded():
    assert model.explain("q", "1. Mix flour.\n2. Rest the dough.")["steps"] == 0.15
    assert model.explain("q", "- mix\n- rest")["steps"] == 0.15
    assert model.explain("q", "First mix, then rest.")["steps"] == 0.15
    assert model.explain("q", "Then rest. Then rest.")["steps"] == 0.0  # one step word
    assert model.explain("q", "1. Mix flour.")["steps"] == 0.0  # one list line is no list


def test_code_block_is_rewarded():
    assert model.explain("q", "Run:\n```\nmake bread\n```")["code"] == 0.15
    assert model.explain("q", "Run make bread.")["code"] == 0.0


def test_markers_are_rewarded_once_however_often_they_appear():
    once = model.explain("q", "It works because of heat.")["explanation"]
    many = model.explain("q", "Because. " * 5 + "because of heat.")["explanation"]
    assert once == many == 0.15


def test_prompt_overlap_rewards_content_words_shared_with_the_prompt():
    # content words of PROMPT: bake, sourdough, bread, home (stop words dropped)
    assert model.explain(PROMPT, "Bake sourdough bread at home.")["prompt_overlap"] == 0.4
    assert model.explain(PROMPT, "Bake it.")["prompt_overlap"] == pytest.approx(0.1)
    assert model.explain(PROMPT, "Paint the fence.")["prompt_overlap"] == 0.0
    assert model.explain("how do I", "anything")["prompt_overlap"] == 0.0  # no content words


@pytest.mark.parametrize(
    "completion",
    [
        "Just run rm -rf / and start again.",
        "sudo RM  -RF   /",
        "Try :(){ :|:& };: in a shell.",
        "Format it with mkfs.ext4 /dev/sdb1",
        "dd if=/dev/zero of=/dev/sda bs=1M",
        "Run DROP TABLE users; to reset.",
        "drop database prod",
        "rm -rf ~",
    ],
)
def test_banned_phrases_are_penalised(completion):
    parts = model.explain("clean up", completion)
    assert parts["banned_phrases"] == -1.5
    assert parts["total"] < 0


@pytest.mark.parametrize(
    "completion",
    ["rm -rf /tmp/build", "rm -rf ~/project/cache", "perform -rf /", "We drop the table cloth."],
)
def test_similar_but_harmless_text_is_not_banned(completion):
    assert model.explain("clean up", completion)["banned_phrases"] == 0.0


def test_each_distinct_banned_phrase_counts():
    assert model.explain("q", "mkfs /dev/sda && DROP TABLE t")["banned_phrases"] == -3.0


def test_custom_banned_phrases_replace_the_built_in_list():
    custom = HeuristicRewardModel(banned_phrases=["format the disk"])
    assert custom.explain("q", "Format  the disk now")["banned_phrases"] == -1.5
    assert custom.explain("q", "rm -rf /")["banned_phrases"] == 0.0
    extended = HeuristicRewardModel(banned_phrases=[*DEFAULT_BANNED_PHRASES, "shutdown -h now"])
    assert extended.explain("q", "shutdown -h now")["banned_phrases"] == -1.5


def test_excessive_length_is_penalised():
    short = HeuristicRewardModel(max_words=10)
    text = " ".join(f"word{i}" for i in range(15))  # 5 words over: half of max_words
    assert short.explain("q", text)["length"] == -0.25
    assert short.explain("q", text * 5)["length"] == -0.5  # capped
    assert short.explain("q", "one two three")["length"] == 0.0


def test_repetition_is_penalised():
    varied = "the quick brown fox jumps over the lazy dog"
    assert model.explain("q", varied)["repetition"] == 0.0
    parts = model.explain("q", "buy now " * 20)
    assert parts["repetition"] < -0.45  # almost every trigram is a repeat
    # trigrams: a b c, b c a, c a b, a b c (repeat) -> 1/4 repeated
    assert model.explain("q", "a b c a b c")["repetition"] == pytest.approx(-0.5 / 4)


def test_a_helpful_answer_outscores_an_unhelpful_one():
    helpful = (
        "To bake sourdough bread at home:\n1. Feed the starter.\n2. Mix and fold the dough.\n"
        "3. Bake hot, because steam lets the loaf rise."
    )
    assert model.evaluate(PROMPT, helpful) > model.evaluate(PROMPT, "No idea.") >= 0.0


def test_weights_are_options():
    quiet = HeuristicRewardModel(marker_weight=0.0, overlap_weight=1.0)
    parts = quiet.explain(PROMPT, "Bake sourdough bread at home, because it is fun.")
    assert parts["explanation"] == 0.0 and parts["prompt_overlap"] == 1.0
    assert parts["total"] == 1.0  # clipped


def test_bad_inputs_are_type_errors():
    with pytest.raises(TypeError, match="completion must be a str"):
        model.evaluate("q", [1, 2])
    with pytest.raises(TypeError, match="prompt must be a str, got NoneType"):
        model.evaluate(None, "answer")
    with pytest.raises(TypeError, match="item 1"):
        model.batch_evaluate([("q", "a"), "not a pair"])


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_words": 0}, ValueError),
        ({"banned_phrases": "rm -rf /"}, TypeError),
        ({"banned_phrases": ["ok", ""]}, TypeError),
        ({"overlap_weight": -1.0}, ValueError),
        ({"length_penalty": float("nan")}, TypeError),
    ],
)
def test_bad_options_are_clear_errors(options, error):
    with pytest.raises(error, match="HeuristicRewardModel"):
        HeuristicRewardModel(**options)


def test_batch_evaluate_matches_evaluate_in_order():
    pairs = [(PROMPT, "Bake bread."), ("q", ""), ("q", "rm -rf /")]
    assert model.batch_evaluate(pairs) == [model.evaluate(p, c) for p, c in pairs]
    assert model.batch_evaluate(iter(pairs)) == model.batch_evaluate(pairs)


texts = st.text(st.characters(codec="utf-8"), max_size=300) | st.lists(
    st.sampled_from(["because", "1. step", "```", "rm -rf /", "bread", "\n", "x", "the"]),
    max_size=80,
).map(" ".join)


@given(texts, texts)
def test_scores_are_in_range_and_deterministic(prompt, completion):
    score = model.evaluate(prompt, completion)
    assert -1.0 <= score <= 1.0
    assert HeuristicRewardModel().evaluate(prompt, completion) == score
