"""Which checkpoint of a run to export, and the run's tokenizer and model with its weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_ml.run.checkpoint_choice import parse_checkpoint_choice

__all__ = ["RunSource", "load_source", "parse_checkpoint_choice"]


@dataclass(frozen=True)
class RunSource:
    """A run restored for export: where it is, which checkpoint, and what it built."""

    run_dir: Path
    checkpoint: Path
    tokenizer: Any
    model: Any


def load_source(
    target: str | Path, choice: str | None = None, config_dirs: Sequence[str] = ()
) -> RunSource:
    """The run at ``target`` (as ``generate`` takes it) with the chosen checkpoint loaded.

    ``choice`` None uses what ``target`` names (the latest checkpoint of a run
    directory, or the one step-N directory given); otherwise it is looked up in
    the run's own ``checkpoints/``.
    """
    from codex_ml.run.restore import compose_run, locate, restore_model

    where = locate(target, choice)
    config = compose_run(where.run_dir, [], config_dirs)
    _, tokenizer, model = restore_model(config, where.checkpoint)
    return RunSource(where.run_dir, where.checkpoint, tokenizer, model)
