"""Which evaluation of a run is the best one so far, for ``keep_best``.

The trainer offers every evaluation after the first step (the one before any
training is only the curve's starting point); the first one always improves,
and a later one improves when it is strictly better (lower with
``mode="min"``, higher with ``"max"``). A NaN never improves. The state
travels in each checkpoint, so a resumed run goes on comparing with the best
of the run it continues.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODES = ("min", "max")


def check_keep_best(metric: object, mode: object, evaluated: Sequence[str]) -> None:
    """Raise a ``ValueError`` naming the setting unless ``metric`` is one of ``evaluated``."""
    if mode not in MODES:
        raise ValueError(
            f"keep_best_mode={mode!r} must be 'min' (lower is better, as for eval_loss) or "
            "'max' (higher is better, as for eval_accuracy@token)."
        )
    if metric is None or metric in evaluated:
        return
    close = difflib.get_close_matches(str(metric), list(evaluated), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"keep_best={metric!r} is not a number the trainer's evaluation gives, so no "
        f"evaluation could make its checkpoint the best.{hint} Name one of "
        f"{', '.join(evaluated)} (keep_best_mode=max for one where higher is better), or "
        "leave keep_best unset to keep only the newest checkpoints."
    )


@dataclass
class BestEvaluation:
    """The best value of ``metric`` so far, the step it was evaluated at, and its checkpoint."""

    metric: str
    mode: str = "min"
    value: float | None = None
    step: int | None = None
    checkpoint: Path | None = None

    def offer(self, step: int, results: Mapping[str, Any]) -> bool:
        """Record ``results`` of the evaluation at ``step`` if better; True when it was."""
        if self.metric not in results:
            raise ValueError(
                f"keep_best={self.metric!r}: the evaluation at step {step} gave no such number "
                f"(it gave {', '.join(sorted(results))}); name one of those."
            )
        value = float(results[self.metric])
        if math.isnan(value) or not self._better(value):
            return False
        self.value, self.step = value, step
        return True

    def _better(self, value: float) -> bool:
        if self.value is None:
            return True
        return value < self.value if self.mode == "min" else value > self.value

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of it (plain values, as ``state.pt`` holds)."""
        return {"metric": self.metric, "mode": self.mode, "value": self.value, "step": self.step}

    def load_state_dict(self, state: Mapping[str, Any], checkpoint: Path | None) -> None:
        """Continue from a checkpoint's record, if it kept the same metric the same way."""
        if state.get("metric") != self.metric or state.get("mode") != self.mode:
            return  # another metric then: the first evaluation from here is the best so far
        self.value, self.step = state.get("value"), state.get("step")
        self.checkpoint = checkpoint

    def summary(self) -> dict[str, Any] | None:
        """``summary.json``'s ``best``: the metric, its best value and step, the checkpoint."""
        if self.step is None:
            return None
        return {
            "metric": self.metric,
            "mode": self.mode,
            "value": self.value,
            "step": self.step,
            "checkpoint": str(self.checkpoint) if self.checkpoint is not None else None,
        }
