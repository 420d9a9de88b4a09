"""Early-stopping settings that could never stop a run are errors, not silence.

``min_delta`` that is not a finite number >= 0 is refused when the callback is
built; a ``monitor`` that the first evaluation does not report is refused at
that evaluation, naming the monitor and the names evaluated. Both are one
paragraph and exit 2 from ``codex-ml train``.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from cli_helpers import QUICK, Command, assert_user_error

from codex_ml.callbacks.early_stopping import EarlyStopping
from codex_ml.config import ConfigError

from . import report

FIRST_EVAL = {"step": 0, "eval_loss": 5.5, "eval_ppl": 245.0, "eval_accuracy@token": 0.01}


@pytest.mark.parametrize("min_delta", [math.nan, math.inf, -0.1, True])
def test_min_delta_must_be_a_finite_number_at_least_0(min_delta: float) -> None:
    report.record("bad_inputs_tried")
    with pytest.raises(ConfigError, match=r"callbacks\.early_stopping\.min_delta=") as caught:
        EarlyStopping(min_delta=min_delta)
    assert "finite number >= 0" in str(caught.value)


def test_a_monitor_the_first_evaluation_lacks_names_it_and_the_evaluated_names() -> None:
    report.record("bad_inputs_tried")
    stopper = EarlyStopping(monitor="eval_los")
    with pytest.raises(ConfigError) as caught:
        stopper.on_evaluate(None, FIRST_EVAL)
    message = str(caught.value)
    assert "callbacks.early_stopping.monitor='eval_los'" in message
    assert "eval_accuracy@token, eval_loss, eval_ppl" in message
    assert "Did you mean 'eval_loss'?" in message


def test_a_monitor_that_is_evaluated_is_checked_once_and_works() -> None:
    stopper = EarlyStopping(monitor="eval_ppl", patience=1)
    stopper.on_evaluate(None, FIRST_EVAL)
    stopper.on_evaluate(None, {"step": 5})  # a later evaluation without it is not an error
    assert stopper.best == 245.0


def _train(tmp_path: Path, *overrides: str) -> object:
    args = ["train", f"hydra.run.dir={tmp_path / 'run'}", *QUICK, "callbacks=[early-stopping]"]
    return Command([*args, *overrides], tmp_path).run(timeout=240)


@pytest.mark.timeout(300)
def test_min_delta_nan_is_exit_2_before_training(tmp_path: Path) -> None:
    result = _train(tmp_path, "callbacks.early_stopping.min_delta=nan")
    report.record("bad_inputs_tried")
    assert_user_error(result, "train", "callbacks.early_stopping.min_delta=nan", "finite")
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.timeout(300)
def test_a_monitor_never_evaluated_is_exit_2_at_the_first_evaluation(tmp_path: Path) -> None:
    result = _train(tmp_path, "callbacks.early_stopping.monitor=eval_los")
    report.record("bad_inputs_tried")
    assert result.returncode == 2, result.stderr
    assert "callbacks.early_stopping.monitor='eval_los'" in result.stderr
    assert "eval_loss" in result.stderr and "Traceback" not in result.stderr
