"""A progress bar over training steps, driven by the trainer's log records."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any


def wanted(setting: Any) -> bool:
    """``run.progress``: ``auto`` (the default) draws only on a terminal; true or false decide.

    A bar redrawn with carriage returns is noise in a CI log or a file.
    """
    if isinstance(setting, str) and setting.strip().lower() == "auto":
        return sys.stderr.isatty()
    if isinstance(setting, str):
        return setting.strip().lower() in ("1", "true", "yes", "on")
    return bool(setting)


class ProgressBar:
    """Shows step, loss, learning rate and tokens/s on stderr (tqdm)."""

    def __init__(self, total: int, *, enabled: bool = True) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=total, desc="train", unit="step", disable=not enabled, file=sys.stderr
        )

    def __call__(self, record: Mapping[str, Any]) -> None:
        if record.get("event") == "log":
            self._bar.update(record["step"] - self._bar.n)
            shown = {
                "loss": ("loss", "{:.4f}"),
                "lr": ("lr", "{:.2e}"),
                "tok_s": ("tokens_per_s", "{:,.0f}"),
            }
            self._bar.set_postfix(
                {
                    label: fmt.format(record[key])
                    for label, (key, fmt) in shown.items()
                    if key in record
                },
                refresh=False,
            )
        elif record.get("event") == "eval":
            self._bar.write(
                f"step {record['step']}: eval_loss {record.get('eval_loss', float('nan')):.4f}"
            )

    def close(self) -> None:
        self._bar.close()
