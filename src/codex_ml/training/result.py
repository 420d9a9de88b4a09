"""What a training run returns: :class:`TrainResult`, for any trainer.

The functional trainer returns one; ``codex-ml train`` reads whatever a
third-party trainer returns (an object or a dict with some of these fields)
into one with :meth:`TrainResult.of`, so the run's summary is made from one
type. Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_ml.training.errors import StopTraining


@dataclass
class TrainResult:
    """What a training run returns; a field a third-party trainer did not give is None."""

    history: list[dict[str, Any]]  # log and eval records, in order
    final_metrics: dict[str, Any]  # train_loss, and eval_loss/eval_ppl/eval_accuracy@token
    steps: int | None = None  # optimiser steps completed, counting those before a resume
    tokens_seen: int | None = None  # training tokens consumed, over all processes
    wall_time: float | None = None  # seconds spent in this call
    checkpoint: Path | None = None  # the last checkpoint written or resumed from
    interrupted: bool = False  # stopped early by Ctrl-C or SIGTERM (after saving, with output_dir)
    first_loss: float | None = None  # training loss of this call's first step
    stop_signal: str | None = None  # "SIGINT", "SIGTERM" or "SIGHUP" when interrupted (any rank's)
    stopped: bool = False  # ended early by a callback's StopTraining (after saving)
    stop_reason: str | None = None  # the StopTraining message, when stopped
    best: dict[str, Any] | None = None  # keep_best: metric, mode, value, step, checkpoint
    loss_tokens: int | None = None  # targets that carried the loss (of instruction data: fewer)

    @classmethod
    def of(cls, result: Any) -> TrainResult:
        """Any trainer's return, read by attribute or by key (a TrainResult, a dict...).

        Where a trainer leaves out ``steps`` or ``first_loss``, they are taken
        from the ``step`` and ``loss`` of its history's records.
        """
        if isinstance(result, cls):
            return result

        def read(name: str, default: Any = None) -> Any:
            if isinstance(result, Mapping):
                return result.get(name, default)
            return getattr(result, name, default)

        history = list(read("history", []) or [])
        losses = [r["loss"] for r in history if isinstance(r, Mapping) and "loss" in r]
        logged_steps = [r["step"] for r in history if isinstance(r, Mapping) and "step" in r]
        return cls(
            history=history,
            final_metrics=dict(read("final_metrics", {}) or {}),
            steps=read("steps", max(logged_steps, default=None)),
            tokens_seen=read("tokens_seen"),
            wall_time=read("wall_time"),
            checkpoint=read("checkpoint"),
            interrupted=bool(read("interrupted", False)),
            first_loss=read("first_loss", losses[0] if losses else None),
            stop_signal=read("stop_signal"),
            stopped=bool(read("stopped", False)),
            stop_reason=read("stop_reason"),
            best=read("best"),
            loss_tokens=read("loss_tokens"),
        )

    @classmethod
    def stopped_by(cls, request: StopTraining, records: list[dict[str, Any]]) -> TrainResult:
        """A trainer let a callback's StopTraining through: what the run saw is its history."""
        result = cls.of({"history": records})
        result.stopped, result.stop_reason = True, request.reason
        return result

    @property
    def status(self) -> str:
        """``completed``, ``interrupted`` (a signal) or ``stopped`` (a callback)."""
        return "interrupted" if self.interrupted else "stopped" if self.stopped else "completed"

    @property
    def exit_status(self) -> int:
        """0, or 128 + the signal that stopped the run at a checkpoint (130, 143)."""
        from codex_ml.training.interrupt import exit_status

        return exit_status(self.stop_signal) if self.interrupted else 0
