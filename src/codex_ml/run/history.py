"""One history per run, from step 0, however often it was resumed.

A resumed run used to start its ``metrics.jsonl``, ``first_loss`` and loss
curve at the resume step. The rows the earlier run logged up to the
checkpoint being resumed are carried over, so every run directory tells the
whole story; a run resumed in place drops the rows it had logged past that
checkpoint (steps that will be trained again).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_ml import fsio
from codex_ml.run.outputs import METRICS_FILE

#: A metrics file larger than this is not read back (a planted or runaway file).
_MAX_METRICS_BYTES = 512 * 1024 * 1024


def checkpoint_step(checkpoint: Path) -> int | None:
    """The step of a ``step-N`` checkpoint directory."""
    name = Path(checkpoint).name
    return int(name[5:]) if name.startswith("step-") and name[5:].isdigit() else None


def read_rows(run_dir: Path, *, upto: int) -> list[dict[str, Any]]:
    """The rows of ``run_dir/metrics.jsonl`` up to step ``upto`` (a damaged line ends them)."""
    from codex_ml.regularfile import open_regular

    path = Path(run_dir) / METRICS_FILE
    try:
        opened = open_regular(path, limit=_MAX_METRICS_BYTES)
    except OSError:  # none, a link, a FIFO or a huge file: the history is not worth the risk
        return []
    rows = []
    with io.TextIOWrapper(opened, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except ValueError:
                break  # a line cut by a kill: what follows it is not trusted
            if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= upto:
                rows.append(row)
    return rows


def truncate(run_dir: Path, *, upto: int) -> None:
    """Keep only the rows of ``run_dir/metrics.jsonl`` up to step ``upto`` (resumed in place)."""
    _write_rows(run_dir, read_rows(run_dir, upto=upto))


def prepend_rows(run_dir: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Put ``rows`` (an earlier run's) ahead of this run's own in its ``metrics.jsonl``."""
    _write_rows(run_dir, [*rows, *read_rows(run_dir, upto=sys.maxsize)])


def _write_rows(run_dir: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    fsio.write_atomic(Path(run_dir) / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in rows))


@dataclass(frozen=True)
class Earlier:
    """The resumed run's rows up to its checkpoint, and whether they are still to be written."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    to_write: bool = False  # resumed into a new directory: written once training has run

    def joined(self, run_dir: Path, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The whole history, from step 0: these rows, then ``rows`` (this run's own).

        Rows still to be written are put ahead of this run's in its
        ``metrics.jsonl`` now, so a start that fails leaves a directory with no
        step in it.
        """
        if self.to_write:
            prepend_rows(run_dir, self.rows)
        return [*self.rows, *rows]


def earlier_rows(resume: str | None, run_dir: Path) -> Earlier:
    """The rows of the run that ``training.resume`` names, up to the checkpoint resumed from.

    Resumed in place, the rows past that checkpoint (steps trained again) are
    dropped from ``metrics.jsonl`` now, before the run appends to it.
    """
    if resume is None:
        return Earlier()
    from codex_ml.run.restore import find_run_dir
    from codex_ml.run.rundir import inside
    from codex_ml.training.checkpoint import resolve_checkpoint

    source = find_run_dir(resume)
    step = checkpoint_step(resolve_checkpoint(resume))
    if source is None or step is None:
        return Earlier()
    if inside(source, run_dir):
        truncate(run_dir, upto=step)
        return Earlier(read_rows(run_dir, upto=step))  # already in this run's metrics.jsonl
    return Earlier(read_rows(source, upto=step), to_write=True)


def first_loss(rows: Sequence[Mapping[str, Any]]) -> float | None:
    """The loss of the first logged step."""
    return next((r["loss"] for r in rows if r.get("event") == "log" and "loss" in r), None)


def latest_eval(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The last evaluation row."""
    return next((r for r in reversed(rows) if r.get("event") == "eval"), None)
