"""``early-stopping``: end the run (checkpoint, status "stopped", exit 0) when it stalls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codex_ml.training.errors import StopTraining


class EarlyStopping:
    """Raise :class:`~codex_ml.training.StopTraining` when ``monitor`` stalls.

    Each evaluation that has ``monitor`` either improves on the best so far by
    more than ``min_delta`` (lower is better with ``mode="min"``, higher with
    ``"max"``) or counts one towards ``patience``; at ``patience`` evaluations in
    a row without one, the run stops at that step. Runs on every rank alike (the
    evaluations are the same), so every rank asks at the same step.
    """

    def __init__(
        self,
        monitor: str = "eval_loss",
        mode: str = "min",
        patience: int = 3,
        min_delta: float = 0.0,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode={mode!r} must be 'min' or 'max'.")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience={patience!r} must be an integer >= 1.")
        if min_delta < 0:
            raise ValueError(f"min_delta={min_delta!r} must be a number >= 0.")
        self.monitor: str = monitor
        self.mode: str = mode
        self.patience: int = patience
        self.min_delta: float = min_delta
        self.best: float | None = None
        self.best_step: int | None = None
        self.stale: int = 0  # evaluations in a row without an improvement

    def on_evaluate(self, run: Any, metrics: Mapping[str, Any]) -> None:
        value = metrics.get(self.monitor)
        if not isinstance(value, int | float):
            return
        if self.best is None or self._gain(float(value)) > self.min_delta:
            self.best, self.best_step, self.stale = float(value), metrics.get("step"), 0
            return
        self.stale += 1
        if self.stale >= self.patience:
            raise StopTraining(
                f"{self.monitor} did not improve by more than {self.min_delta:g} in "
                f"{self.patience} evaluation(s); best {self.best:.4g} at step {self.best_step}"
                f"{_kept_best(run, self.monitor, self.mode)}"
            )

    def _gain(self, value: float) -> float:
        assert self.best is not None
        return self.best - value if self.mode == "min" else value - self.best


def _kept_best(run: Any, monitor: str, mode: str) -> str:
    """Where the best checkpoint is, when the run keeps it for the same number."""
    training = (getattr(run, "config", None) or {}).get("training") or {}
    if training.get("keep_best") != monitor or training.get("keep_best_mode", "min") != mode:
        return ""
    return f"; checkpoints/best holds the checkpoint of the best {monitor} (--checkpoint best)"
