"""``early-stopping``: end the run (checkpoint, status "stopped", exit 0) when it stalls."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from codex_ml.config.errors import ConfigError
from codex_ml.training.errors import StopTraining

#: Where the preset puts this callback's settings (``configs/callbacks/early-stopping.yaml``).
WHERE = "callbacks.early_stopping"


class EarlyStopping:
    """Raise :class:`~codex_ml.training.StopTraining` when ``monitor`` stalls.

    Each evaluation that has ``monitor`` either improves on the best so far by
    more than ``min_delta`` (lower is better with ``mode="min"``, higher with
    ``"max"``) or counts one towards ``patience``; at ``patience`` evaluations in
    a row without one, the run stops at that step. Runs on every rank alike (the
    evaluations are the same), so every rank asks at the same step.

    A setting that could never stop the run is a :class:`ConfigError`: a
    ``min_delta`` that is not a finite number >= 0 (at build time), and a
    ``monitor`` that the first evaluation does not report (at that evaluation).
    """

    def __init__(
        self,
        monitor: str = "eval_loss",
        mode: str = "min",
        patience: int = 3,
        min_delta: float = 0.0,
    ) -> None:
        if mode not in ("min", "max"):
            raise ConfigError(
                f"{WHERE}.mode={mode!r} must be 'min' (lower is better) or 'max'.",
                where=f"{WHERE}.mode",
            )
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigError(
                f"{WHERE}.patience={patience!r} must be an integer >= 1: the evaluations in a "
                "row without an improvement after which the run stops.",
                where=f"{WHERE}.patience",
            )
        if (
            isinstance(min_delta, bool)
            or not isinstance(min_delta, int | float)
            or not math.isfinite(min_delta)
            or min_delta < 0
        ):
            raise ConfigError(
                f"{WHERE}.min_delta={min_delta!r}: the early-stopping callback's min_delta must "
                "be a finite number >= 0, the improvement an evaluation must beat to count (0: "
                "any improvement); with this value no evaluation would ever count or the run "
                f"would never stop. Set {WHERE}.min_delta=0.0 or a small positive number.",
                where=f"{WHERE}.min_delta",
            )
        self.monitor: str = monitor
        self.mode: str = mode
        self.patience: int = patience
        self.min_delta: float = min_delta
        self.best: float | None = None
        self.best_step: int | None = None
        self.stale: int = 0  # evaluations in a row without an improvement
        self.checked: bool = False  # whether an evaluation has reported ``monitor``

    def on_evaluate(self, run: Any, metrics: Mapping[str, Any]) -> None:
        if not self.checked:
            self._require_monitor(metrics)
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

    def _require_monitor(self, metrics: Mapping[str, Any]) -> None:
        """The first evaluation must report ``monitor``, or the run could never stop."""
        evaluated = sorted(name for name in metrics if name != "step")
        if self.monitor in metrics:
            self.checked = True
            return
        from difflib import get_close_matches

        close = get_close_matches(self.monitor, evaluated, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{WHERE}.monitor={self.monitor!r}: the early-stopping callback watches a metric "
            f"that the evaluation does not report, so it could never stop the run; the "
            f"evaluation reports {', '.join(evaluated) or 'nothing'}.{hint} Set "
            f"{WHERE}.monitor to one of those.",
            where=f"{WHERE}.monitor",
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
