"""The evaluation job behind ``codex-ml evaluate``: score a trained run, write a JSON report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_ml import runfiles
from codex_ml.fsio import make_dir
from codex_ml.run.assemble import build, build_metrics, split_records
from codex_ml.run.outputs import package_versions, write_json
from codex_ml.run.restore import compose_run, locate, restore_model

REPORT_FILE = runfiles.EVALUATION


@dataclass(frozen=True)
class Generated:
    """The checkpoint that generated, and its samples (``prompt``, ``completion``)."""

    checkpoint: Path
    samples: list[dict[str, str]]


def evaluate_job(
    target: str,
    overrides: Sequence[str],
    output: str | None = None,
    config_dirs: Sequence[str] = (),
    checkpoint: str | None = None,
) -> dict[str, Any]:
    """Metrics, generations and rewards of the run at ``target``; returns the report written.

    ``checkpoint``: latest, best or step-N of the run (None: the one ``target`` names).
    """
    from codex_ml.run.scoring import score

    where = locate(target, checkpoint)
    config = compose_run(where.run_dir, overrides, config_dirs)
    p, tokenizer, model = restore_model(config, where.checkpoint)
    from codex_ml.data.chat import record_text

    records = [record_text(r) for r in build(p, "data")]  # instruction examples as their text
    settings = p.run
    # The run's own held-out split, unless other data was asked for: then all of it.
    if any(o.lstrip("+~").startswith("data") for o in overrides):
        eval_records = records
    else:
        _, eval_records = split_records(
            records,
            eval_fraction=float(settings.get("eval_fraction", 0.1)),
            seed=int(settings.get("seed", 0)),
        )
    scoring = {
        **settings,
        "block_size": config["training"].get("block_size", 128),
        "batch_size": config["training"].get("batch_size", 8),
    }
    report = score(
        model, tokenizer, eval_records, build_metrics(p), build(p, "reward_model"), scoring
    )
    report.update(
        run_dir=str(where.run_dir),
        checkpoint=str(where.checkpoint),
        overrides=list(overrides),
        eval_records=len(eval_records),
        reward_model=p.specs["reward_model"].name,
        versions=package_versions(),
    )
    path = Path(output) if output else where.run_dir / REPORT_FILE
    make_dir(path.parent)  # --output reports/qa.json just works
    write_json(path, report)
    report["report_path"] = str(path)
    return report


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
