"""``tensorboard``: event files under ``<run_dir>/tensorboard/``, for ``tensorboard --logdir``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from codex_ml.callbacks.scalars import scalars

#: The folder in the run directory.
EVENTS_DIR = "tensorboard"


class TensorBoardCallback:
    """Every logged and evaluated number as a scalar at its step, and the config as text.

    Scalars are named as in ``metrics.jsonl`` (``loss``, ``lr``, ``eval_loss``...);
    TensorBoard stores them as 32-bit floats. Rank 0 only.
    """

    def __init__(self, flush_secs: int = 30) -> None:
        import tensorboard  # noqa: F401  (missing: the "tensorboard" extra, named before training)
        from torch.utils.tensorboard import SummaryWriter

        self._writer_class = SummaryWriter
        self.flush_secs = flush_secs
        self._writer: Any = None

    def on_train_start(self, run: Any) -> None:
        if not run.is_main:
            return
        from omegaconf import OmegaConf

        from codex_ml import fsio

        folder = fsio.make_dir(Path(run.run_dir) / EVENTS_DIR)  # never through a link
        self._writer = self._writer_class(log_dir=str(folder), flush_secs=self.flush_secs)
        yaml = OmegaConf.to_yaml(OmegaConf.create(run.plain_config()))
        self._writer.add_text("config", f"```yaml\n{yaml}```", global_step=0)

    def on_log(self, run: Any, record: Mapping[str, Any]) -> None:
        self._add(record)

    def on_evaluate(self, run: Any, metrics: Mapping[str, Any]) -> None:
        self._add(metrics)

    def on_train_end(self, run: Any, summary: Mapping[str, Any]) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _add(self, record: Mapping[str, Any]) -> None:
        if self._writer is None:
            return
        step = int(record.get("step", 0))
        for name, value in scalars(record).items():
            self._writer.add_scalar(name, value, global_step=step)
