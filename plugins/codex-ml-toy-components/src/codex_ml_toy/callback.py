"""A callback: prints the loss of every log record, and a line at the end of the run."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any


class LossPrinter:
    """``on_log`` and ``on_train_end`` only; a callback may have any of the five methods."""

    def __init__(self, prefix: str = "toy") -> None:
        self.prefix = prefix

    def on_log(self, run: Any, record: Mapping[str, Any]) -> None:
        if run.is_main:
            print(
                f"{self.prefix}: step {record['step']} loss {record['loss']:.4f}", file=sys.stderr
            )

    def on_train_end(self, run: Any, summary: Mapping[str, Any]) -> None:
        if run.is_main:
            print(
                f"{self.prefix}: {summary['status']} after {summary['steps']} steps",
                file=sys.stderr,
            )
