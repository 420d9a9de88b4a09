"""Each component this hook plugin registers keeps its kind's contract: one line each."""

from codex_ml.testing import check_component


def test_toy_whitespace() -> None:
    check_component("tokenizer", "toy_whitespace")


def test_toy_length_ratio() -> None:
    check_component("metric", "toy_length_ratio")


def test_toy_reward() -> None:
    check_component("reward_model", "toy_reward")


def test_toy_sign_sgd() -> None:
    check_component("optimizer", "toy_sign_sgd")
