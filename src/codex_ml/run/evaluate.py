"""The evaluation job behind ``codex-ml evaluate``: score a trained run, write a JSON report.

By default the run's own held-out split is scored, all of it, streamed from
its token store, by the same rules as the end of ``codex-ml train``
(:mod:`codex_ml.run.held_out`), so the report and the run's ``summary.json``
agree; ``--max-tokens N`` scores its first ``N`` tokens instead. Other data
(``data=...`` overrides) is scored whole. ``--tasks`` runs lm-evaluation-harness
tasks on the same model (:mod:`codex_ml.evaluation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_ml import runfiles
from codex_ml.fsio import make_dir
from codex_ml.run.assemble import Plan, build, build_metrics, data_source
from codex_ml.run.held_out import HeldOut
from codex_ml.run.outputs import package_versions, write_json
from codex_ml.run.restore import compose_run, locate, restore_model

REPORT_FILE = runfiles.EVALUATION


@dataclass(frozen=True)
class Generated:
    """The checkpoint that generated, and its samples (``prompt``, ``completion``)."""

    checkpoint: Path
    samples: list[dict[str, str]]


@dataclass(frozen=True)
class EvaluateOptions:
    """What ``codex-ml evaluate`` scores beyond the run's metrics: a token cap, harness tasks."""

    max_tokens: int | None = None  # None: what the run's run.eval_max_tokens says (all)
    tasks: tuple[str, ...] = ()  # lm-evaluation-harness task names
    include_path: str | None = None  # a folder of task YAMLs
    limit: float | None = None  # documents per task (a fraction below 1)
    num_fewshot: int | None = None
    checkpoint: str | None = None  # latest, best or step-N (None: the one the target names)


def evaluate_job(
    target: str,
    overrides: Sequence[str],
    output: str | None = None,
    config_dirs: Sequence[str] = (),
    options: EvaluateOptions = EvaluateOptions(),
) -> dict[str, Any]:
    """Metrics, generations, rewards (and tasks) of the run at ``target``; the report written."""
    from codex_ml.run.scoring import score, scoring_settings

    if options.tasks:
        from codex_ml.evaluation import require_lm_eval

        require_lm_eval()  # before anything is scored
    where = locate(target, options.checkpoint)
    config = compose_run(where.run_dir, overrides, config_dirs)
    p, tokenizer, model = restore_model(config, where.checkpoint)
    held_out, eval_records = held_out_split(p, tokenizer, overrides)
    settings = scoring_settings(config)
    if options.max_tokens is not None:
        settings["eval_max_tokens"] = options.max_tokens
    report = score(
        model,
        tokenizer,
        held_out,
        eval_records,
        build_metrics(p),
        build(p, "reward_model"),
        settings,
    )
    if options.tasks:
        report["tasks"] = run_tasks(model, tokenizer, options)
    report.update(
        run_dir=str(where.run_dir),
        checkpoint=checkpoint_record(where.checkpoint),
        overrides=list(overrides),
        eval_records=held_out.records if held_out is not None else 0,
        reward_model=p.specs["reward_model"].name,
        versions=package_versions(),
    )
    path = Path(output) if output else where.run_dir / REPORT_FILE
    make_dir(path.parent)  # --output reports/qa.json just works
    write_json(path, report)
    report["report_path"] = str(path)
    return report


def held_out_split(
    p: Plan, tokenizer: Any, overrides: Sequence[str]
) -> tuple[HeldOut | None, list[str]]:
    """What to score: the run's held-out split (its token store), or all of other data.

    Returns the split as ids and held-out records as text (for the metrics that
    read references: the first ones the store kept, or all of the other data).
    """
    if any(o.lstrip("+~").startswith("data") for o in overrides):
        from codex_ml.data.chat import record_text

        records = [record_text(r) for r in build(p, "data")]  # instruction examples as text
        return (HeldOut.of_texts(tokenizer, records) if records else None), records
    import sys

    from codex_ml.run.prepare import prepare
    from codex_ml.world import Process

    prepared = prepare(data_source(p), tokenizer, process=Process(), progress=sys.stderr.isatty())
    store = prepared.store
    return (HeldOut.of_store(store) if store.tokens("eval") else None), store.eval_texts()


def checkpoint_record(checkpoint: Path) -> dict[str, Any]:
    """``{"path", "step"}`` of the checkpoint scored (its step from its ``step-N`` name)."""
    from codex_ml.training.checkpoint.layout import STEP_DIR

    named = STEP_DIR.match(checkpoint.name)
    return {"path": str(checkpoint.absolute()), "step": int(named.group(1)) if named else None}


def run_tasks(model: Any, tokenizer: Any, options: EvaluateOptions) -> dict[str, dict[str, Any]]:
    """lm-evaluation-harness tasks on the model: ``{task: {metric: value}}``."""
    from codex_ml.evaluation import run_harness_tasks

    return run_harness_tasks(
        model,
        tokenizer,
        list(options.tasks),
        include_path=options.include_path,
        limit=options.limit,
        num_fewshot=options.num_fewshot,
    )


def generate_job(
    target: str,
    prompts: Sequence[str],
    *,
    num_samples: int,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    seed: int,
    config_dirs: Sequence[str] = (),
    checkpoint: str | None = None,
) -> Generated:
    """``num_samples`` completions of each prompt from the run at ``target`` (its ``checkpoint``:
    latest, best or step-N; None: the one ``target`` names)."""
    from codex_ml.run.scoring import complete

    where = locate(target, checkpoint)
    config = compose_run(where.run_dir, [], config_dirs)
    _, tokenizer, model = restore_model(config, where.checkpoint)
    samples = []
    for index in range(num_samples):
        completions = complete(
            model,
            tokenizer,
            prompts,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            seed=seed + index,
        )
        samples += [
            {"prompt": p, "completion": c} for p, c in zip(prompts, completions, strict=True)
        ]
    return Generated(where.checkpoint, samples)
