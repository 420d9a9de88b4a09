"""codex-ml's own logging for a run: ``<run_dir>/train.log`` on rank 0, warnings on stderr.

``codex-ml train`` composes with Hydra's compose API, so Hydra configures no
logging (``docs/decisions.md``); this is the one configuration instead. While a
run lasts, the ``codex_ml`` logger writes every INFO line to ``train.log``
(rank 0 only, opened through :class:`~codex_ml.fsio.SafeFileHandler`, so a link
planted there is refused, never followed) and WARNING lines to stderr on every
rank, prefixed with the rank under ``torchrun``. The lines are the run's start,
each log record, each evaluation, each checkpoint, faults, and its end.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from codex_ml import fsio, runfiles

#: The file in the run directory (``codex_ml.run.outputs.LOG_FILE``).
LOG_FILE = runfiles.LOG
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def run_logging(run_dir: Path | None, *, rank: int = 0, world_size: int = 1) -> Iterator[None]:
    """Configure the ``codex_ml`` logger for one run, and put it back as it was afterwards.

    A run that raises has its error logged before it propagates.
    """
    logger = logging.getLogger("codex_ml")
    handlers: list[logging.Handler] = []
    if rank == 0 and run_dir is not None:
        to_file = fsio.SafeFileHandler(Path(run_dir) / LOG_FILE, mode="a", encoding="utf-8")
        to_file.setFormatter(logging.Formatter(_FORMAT))
        to_file.setLevel(logging.INFO)
        handlers.append(to_file)
    console = logging.StreamHandler(sys.stderr)
    prefix = f"[rank {rank}] " if world_size > 1 else ""
    console.setFormatter(logging.Formatter(f"{prefix}codex-ml train: %(levelname)s: %(message)s"))
    console.setLevel(logging.WARNING)
    handlers.append(console)
    saved = (logger.level, logger.propagate)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # one configuration: not twice through a host's root handlers
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield
    except BaseException as error:
        logger.info("ended by %s: %s", type(error).__name__, " ".join(str(error).split()))
        raise
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def describe_record(record: Mapping[str, Any]) -> str | None:
    """One ``train.log`` line for a trainer's record (None for records not worth a line)."""
    event, step = record.get("event"), record.get("step")
    if event == "log":
        total = f"/{record['max_steps']}" if "max_steps" in record else ""
        parts = [f"step {step}{total}"]
        for key, label, fmt in (
            ("loss", "loss", "{:.4f}"),
            ("lr", "lr", "{:.3e}"),
            ("tokens_per_s", "tokens/s", "{:,.0f}"),
        ):
            if isinstance(record.get(key), int | float):
                parts.append(f"{label} {fmt.format(record[key])}")
        return "  ".join(parts)
    if event == "eval":
        numbers = "  ".join(
            f"{key}={value:.4g}"
            for key, value in record.items()
            if key not in ("event", "step", "elapsed") and isinstance(value, int | float)
        )
        return f"step {step}  eval  {numbers}"
    if event == "checkpoint":
        return f"step {step}  checkpoint  {record.get('path')}"
    return None
