"""How a run shows its progress: a bar on a terminal, plain lines in a log.

``run.progress`` decides: ``auto`` (the default) draws the bar on stderr when
stderr is a terminal, ``true`` always, ``false`` never. When stdout is not a
terminal (a CI log, ``| tee run.log``, a batch job's file) and ``run.progress``
is not ``false``, a plain line per log record goes to stdout as well, since a
bar redrawn with carriage returns is noise there:
``step 20/300  loss 2.4102  lr 3.00e-03  tok/s 51,200  elapsed 0:00:08  eta 0:01:52``.
"""

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


def lines_wanted(setting: Any) -> bool:
    """Plain progress lines: stdout is not a terminal, and ``run.progress`` is not false."""
    switched_off = setting is False or (
        isinstance(setting, str) and setting.strip().lower() in ("0", "false", "no", "off")
    )
    return not switched_off and not sys.stdout.isatty()


class ProgressBar:
    """Shows step, loss, learning rate and tokens/s on stderr (tqdm); evaluations on stdout."""

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
            self._bar.write(eval_line(record))

    def close(self) -> None:
        self._bar.close()


def eval_line(record: Mapping[str, Any]) -> str:
    """``step 100: eval_loss 2.3456`` and, where the trainer says, how many tokens it scored.

    A trainer's periodic evaluation is an estimate over the first held-out
    batches; the run's own number comes from scoring the whole split at the end.
    """
    line = f"step {record['step']}: eval_loss {record.get('eval_loss', float('nan')):.4f}"
    tokens = record.get("eval_tokens")
    if isinstance(tokens, int):
        line += f" (estimate over the first {tokens:,} held-out tokens)"
    return line


class ProgressLines:
    """One plain line on stdout per log record: step, loss, lr, tok/s, elapsed time and ETA.

    The ETA is the time per step since the first line (evaluations and
    checkpoints included) times the steps left; on the first line, when there
    is no such time yet, it is the steps left at the logged tokens/s.
    """

    def __init__(self, max_steps: int, *, enabled: bool = True) -> None:
        self.max_steps = max_steps
        self.enabled = enabled
        self._first: tuple[int, float] | None = None  # (step, elapsed) of the first line

    def __call__(self, record: Mapping[str, Any]) -> None:
        if not self.enabled or record.get("event") != "log":
            return
        print(self.line(record), flush=True)

    def line(self, record: Mapping[str, Any]) -> str:
        step = int(record["step"])
        total = int(record.get("max_steps") or self.max_steps)
        elapsed = float(record.get("elapsed", 0.0))
        parts = [f"step {step}/{total}"]
        if "loss" in record:
            parts.append(f"loss {record['loss']:.4f}")
        if "lr" in record:
            parts.append(f"lr {record['lr']:.2e}")
        if "tokens_per_s" in record:
            parts.append(f"tok/s {record['tokens_per_s']:,.0f}")
        parts.append(f"elapsed {clock(elapsed)}")
        eta = self._eta(record, step, total, elapsed)
        parts.append(f"eta {clock(eta) if eta is not None else '?'}")
        return "  ".join(parts)

    def _eta(
        self, record: Mapping[str, Any], step: int, total: int, elapsed: float
    ) -> float | None:
        left = max(total - step, 0)
        if self._first is None:
            self._first = (step, elapsed)
        first_step, first_elapsed = self._first
        if step > first_step:
            return (elapsed - first_elapsed) / (step - first_step) * left
        rate, seen = record.get("tokens_per_s"), record.get("tokens_seen")
        if rate and seen and step:
            return left * (float(seen) / step) / float(rate)  # tokens per step / tokens per s
        return None

    def close(self) -> None:
        """Nothing to clear: the lines are already written."""


def clock(seconds: float) -> str:
    """``H:MM:SS``, as a log reader reads a duration."""
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
