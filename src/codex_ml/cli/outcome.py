"""What ``codex-ml train`` prints when a run ends: its status, its numbers and how to go on.

Made from the run's summary as ``summary.json`` holds it (secrets redacted):
each number once, what was skipped and why, and the command that resumes an
interrupted run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_ml.data.sources import skipped_phrase
from codex_ml.run.restore import resume_command


def print_outcome(summary: dict[str, Any], run_dir: Path) -> None:
    """Status, each number once, what was skipped and why, and how to go on."""
    print(
        f"{summary['status']}: {summary['steps']} steps, {summary['tokens_seen'] or 0:,} tokens"
        f"{_loss_tokens(summary)}, {summary['wall_seconds']:.1f}s"
    )
    final = {k: v for k, v in summary["final_metrics"].items() if isinstance(v, float)}
    stale = {k: final.pop(k) for k in list(final) if k.startswith("eval_") and _stale(summary)}
    shown = {k: f"{v:.4g}" for k, v in final.items()}
    skipped: dict[str, list[str]] = {}
    for alias, value in summary["metrics"].items():
        key = summary["components"].get(f"metrics.{alias}", {}).get("key", alias)
        if isinstance(value, float) and shown.get(f"eval_{key}") != f"{value:.4g}":
            shown[alias] = f"{value:.4g}"  # not when it repeats the trainer's eval number
        elif isinstance(value, dict) and "skipped" in value:
            skipped.setdefault(_reason(str(value["skipped"])), []).append(alias)
    if shown:
        print("  " + "  ".join(f"{k}={v}" for k, v in shown.items()))
    if summary.get("eval_tokens"):
        print(f"  scored on the held-out split: {summary['eval_tokens']:,} tokens")
    if stale:
        numbers = "  ".join(f"{k}={v:.4g}" for k, v in stale.items())
        tokens = summary["final_metrics"].get("eval_tokens")
        over = f", an estimate over {tokens:,} tokens" if isinstance(tokens, int) else ""
        print(f"  last evaluation (step {summary['last_eval_step']}{over}): {numbers}")
    if skipped:
        print("  skipped: " + "; ".join(f"{', '.join(n)} ({r})" for r, n in skipped.items()))
    if files_skipped := skipped_phrase(summary.get("data", {}).get("skipped_files") or {}):
        print(f"  data: {files_skipped}")
    if summary.get("reward"):
        print(f"  {_reward_line(summary)}")
    if summary.get("best"):
        print(f"  {_best_line(summary['best'])}")
    if summary["status"] == "stopped":
        print(f"  stopped early: {summary.get('stop_reason')}")
    if summary.get("faults"):
        print(f"  faults: {len(summary['faults'])} (see train.log)")
    if summary["status"] == "interrupted":
        print(f"  resume with: {resume_command(run_dir)}")
    print(f"run directory: {run_dir}")


def _loss_tokens(summary: dict[str, Any]) -> str:
    """`` (N carried the loss)`` when fewer tokens than were trained on did (instruction data)."""
    loss_tokens = summary.get("loss_tokens")
    if loss_tokens is None or loss_tokens == summary.get("tokens_seen"):
        return ""
    return f" ({loss_tokens:,} carried the loss)"


def _best_line(best: dict[str, Any]) -> str:
    """Which evaluation was the best, and where its checkpoint is kept."""
    return (
        f"best {best['metric']}={best['value']:.4g} at step {best['step']}: checkpoints/best "
        "(--checkpoint best for evaluate, generate and export)"
    )


def _reward_line(summary: dict[str, Any]) -> str:
    """The samples' reward and which rules gave it (or that none fired)."""
    reward = summary["reward"]
    key = summary["components"].get("reward_model", {}).get("key", "the reward model")
    spread = ", ".join(f"{name} {reward[name]:+.3f}" for name in ("mean", "min", "max"))
    head = f"reward ({key}): {spread}"
    terms = reward.get("terms")
    if terms is None:
        return head
    if not terms:
        return f"{head}; no rule fired for any sample"
    rules = ", ".join(f"{rule} {value:+.3f}" for rule, value in terms.items())
    return f"{head}; mean per rule: {rules} (each sample's in samples.jsonl)"


def _stale(summary: dict[str, Any]) -> bool:
    """An interrupted run whose last evaluation is older than its last step."""
    last = summary.get("last_eval_step")
    return summary["status"] == "interrupted" and last is not None and last < summary["steps"]


#: Words that say in short why a metric was skipped, by what its reason mentions.
_SKIP_WORDS = (
    ("reference", "no references"),
    ("generation", "no generations"),
    ("sample", "no samples"),
    ("eval", "no eval data"),
)


def _reason(text: str) -> str:
    lowered = text.lower()
    return next((word for key, word in _SKIP_WORDS if key in lowered), text.split(".")[0])
