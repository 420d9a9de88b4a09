"""Run lm-evaluation-harness tasks on a codex-ml model, offline, and read back the scores.

Tasks come from lm-eval's own catalogue, or, with ``include_path``, only from
the task YAMLs in that folder (their data as local files: ``dataset_path:
json`` and ``dataset_kwargs: {data_files: ...}``). Nothing is downloaded:
``HF_DATASETS_OFFLINE`` and ``HF_HUB_OFFLINE`` are set before lm-eval (and
``datasets``) are imported, so a task whose data is not on disk fails with an
error instead.

Scores come back as ``{task: {metric: value}}``: lm-eval's ``acc,none`` is
``acc`` (the ``none`` filter is the unfiltered score); a metric under another
filter keeps its name (``exact_match,strict-match``). Standard errors come
from 1,000 bootstrap resamples where lm-eval bootstraps (its command line
takes 100,000: only the stderr of such metrics differs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: Where lm-eval bootstraps a standard error, this many resamples.
BOOTSTRAP_ITERS = 1000
_NO_FILTER = ",none"


def run_harness_tasks(
    model: Any,
    tokenizer: Any,
    tasks: Sequence[str],
    *,
    include_path: str | None = None,
    limit: float | None = None,
    num_fewshot: int | None = None,
    batch_size: int = 8,
) -> dict[str, dict[str, Any]]:
    """Score ``model`` on lm-eval ``tasks``; ``{task: {metric: value}}``."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lm_eval import simple_evaluate

    from codex_ml.evaluation.lm_eval_adapter import CodexLM

    manager = task_manager(include_path)
    check_task_names(manager, tasks, include_path)
    output = simple_evaluate(
        model=CodexLM(model, tokenizer, batch_size=batch_size),
        tasks=list(tasks),
        task_manager=manager,
        limit=limit,
        num_fewshot=num_fewshot,
        log_samples=False,
        bootstrap_iters=BOOTSTRAP_ITERS,
    )
    if output is None:  # only on ranks other than 0, which codex-ml does not start here
        return {}
    return task_scores(output["results"])


def require_lm_eval() -> None:
    """Fail at once, before any scoring, where lm-eval (the ``eval`` extra) is not installed."""
    from importlib.util import find_spec

    if find_spec("lm_eval") is None:
        raise ModuleNotFoundError("No module named 'lm_eval'", name="lm_eval")


def task_manager(include_path: str | None) -> Any:
    """lm-eval's catalogue, or the task YAMLs of ``include_path`` alone."""
    from lm_eval.tasks import TaskManager

    if include_path is None:
        return TaskManager()
    folder = Path(include_path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"--include-path {include_path}: no such folder; give the folder that holds the "
            "task YAML files."
        )
    return TaskManager(include_path=str(folder), include_defaults=False)


def check_task_names(manager: Any, tasks: Sequence[str], include_path: str | None) -> None:
    """An unknown task is a ValueError naming it and the tasks there are (where few)."""
    unknown = [task for task in tasks if not manager.match_tasks([task])]  # globs allowed
    if not unknown:
        return
    where = f"the task YAMLs in {include_path}" if include_path else "lm-eval's task catalogue"
    listed = sorted(manager.all_tasks)
    hint = f" (it has: {', '.join(listed)})" if len(listed) <= 20 else ""
    raise ValueError(
        f"--tasks: {', '.join(unknown)} is not among {where}{hint}. Name a task its YAML "
        "defines (task: NAME), or give the folder with --include-path DIR."
    )


def task_scores(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """lm-eval's per-task results as ``{task: {metric: value}}``, numbers only."""
    scores: dict[str, dict[str, Any]] = {}
    for task, found in results.items():
        numbers = {}
        for key, value in found.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue  # the alias, and "N/A" where no stderr was computed
            numbers[key.removesuffix(_NO_FILTER)] = value
        scores[task] = numbers
    return scores


def task_table(scores: Mapping[str, Mapping[str, Any]]) -> str:
    """The scores as a text table: a row per task and metric, its stderr and documents beside it."""
    rows = [("task", "metric", "value", "stderr", "docs")]
    for task, numbers in scores.items():
        docs = str(numbers.get("sample_len", ""))
        for metric, value in numbers.items():
            if "_stderr" in metric or metric == "sample_len":
                continue
            name, comma, kept_filter = metric.partition(",")
            stderr = numbers.get(f"{name}_stderr{comma}{kept_filter}")
            shown = "" if stderr is None else f"{stderr:.4f}"
            rows.append((task, metric, f"{value:.4f}", shown, docs))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
