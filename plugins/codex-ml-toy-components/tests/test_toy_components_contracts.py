"""Each component of this distribution keeps its kind's contract: one line per component."""

from codex_ml.testing import check_component


def test_toy_tokenizer() -> None:
    check_component("tokenizer", "toy_tokenizer")


def test_toy_model() -> None:
    check_component("model", "toy_model")


def test_toy_metric() -> None:
    check_component("metric", "toy_metric")


def test_toy_data_loader() -> None:
    check_component("data_loader", "toy_data_loader", n=10)


def test_toy_loss_printer() -> None:
    check_component("callback", "toy_loss_printer")
