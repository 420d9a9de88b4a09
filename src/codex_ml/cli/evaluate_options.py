"""``codex-ml evaluate``'s options beyond the run: a token cap and lm-evaluation-harness tasks."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_evaluate_options(parser: argparse.ArgumentParser) -> None:
    """``--max-tokens``, and ``--tasks`` with ``--include-path``, ``--limit``, ``--num-fewshot``."""
    parser.add_argument(
        "--max-tokens",
        type=_positive_int,
        metavar="N",
        help="score only the first N held-out tokens (default: the whole held-out split)",
    )
    tasks = parser.add_argument_group("lm-evaluation-harness tasks (the eval extra)")
    tasks.add_argument(
        "--tasks",
        metavar="NAME[,NAME]",
        help="run these lm-eval tasks on the run's model, offline",
    )
    tasks.add_argument(
        "--include-path", metavar="DIR", help="a folder of task YAMLs (then only those)"
    )
    tasks.add_argument(
        "--limit", type=_limit, metavar="N", help="documents per task (below 1: a fraction)"
    )
    tasks.add_argument("--num-fewshot", type=_count, metavar="K", help="few-shot examples")


def evaluate_options(args: argparse.Namespace) -> Any:
    """The parsed options as :class:`codex_ml.run.evaluate.EvaluateOptions`."""
    from codex_ml.run.evaluate import EvaluateOptions

    names = tuple(name.strip() for name in (args.tasks or "").split(",") if name.strip())
    return EvaluateOptions(
        max_tokens=args.max_tokens,
        tasks=names,
        include_path=args.include_path,
        limit=args.limit,
        num_fewshot=args.num_fewshot,
        checkpoint=args.checkpoint,
    )


def print_task_table(report: dict[str, Any]) -> None:
    """The task scores as a table on stderr (stdout holds the JSON alone)."""
    if report.get("tasks"):
        from codex_ml.evaluation import task_table

        print(task_table(report["tasks"]), file=sys.stderr)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of tokens")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _limit(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive limit")
    return int(value) if value >= 1 and value.is_integer() else value
