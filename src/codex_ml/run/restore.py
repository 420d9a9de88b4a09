"""Bring a finished (or interrupted) run back: its config, tokenizer and trained model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunLocation:
    """A run directory and the checkpoint in it to use."""

    run_dir: Path
    checkpoint: Path


def locate(target: str | Path) -> RunLocation:
    """Accept a run directory, its ``checkpoints/`` or one ``checkpoints/step-N``."""
    from codex_ml.training.checkpoint import resolve_checkpoint

    path = Path(target).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: give a run directory (as printed by `codex-ml train`), "
            f"its checkpoints/ directory or one checkpoints/step-N directory."
        )
    checkpoint = resolve_checkpoint(path)
    # <run>/checkpoints/step-N, or a copy moved aside under checkpoints/ by a rerun
    run_dir = next(
        (p.parent for p in checkpoint.parents if p.name == "checkpoints"), checkpoint.parent.parent
    )
    if not (run_dir / ".hydra").is_dir():
        raise FileNotFoundError(
            f"{run_dir} has no .hydra/ directory, so the run that wrote {checkpoint} cannot be "
            f"recomposed; pass the run directory that `codex-ml train` created."
        )
    return RunLocation(run_dir, checkpoint)


def run_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides that shape a run's components: not Hydra's own, not ``training.resume``."""
    return [o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "training.resume"))]


def recorded_invocation(run_dir: Path) -> tuple[str, list[str]]:
    """The config name and overrides the run was started with (from Hydra's own record)."""
    from omegaconf import OmegaConf

    hydra_dir = run_dir / ".hydra"
    config_name = OmegaConf.load(hydra_dir / "hydra.yaml").hydra.job.config_name
    overrides = list(OmegaConf.load(hydra_dir / "overrides.yaml"))
    return str(config_name), run_overrides(overrides)


def resume_command(
    run_dir: Path, config_name: str, overrides: Sequence[str], config_dirs: Sequence[str] = ()
) -> str:
    """The shell command that continues a run: its own presets and overrides, plus the resume."""
    import shlex

    options = [] if config_name == "train" else ["-cn", config_name]
    for folder in config_dirs:
        options += ["-cd", str(folder)]
    resume = f"training.resume={run_dir}"
    return shlex.join(["codex-ml", "train", *options, *run_overrides(overrides), resume])


def compose_run(run_dir: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """The run's config, recomposed with the given overrides on top, resolved."""
    from codex_ml.run.assemble import resolve
    from codex_ml.run.compose import compose_config
    from codex_ml.run.invocation import recorded_config_dirs
    from codex_ml.run.precheck import check_overrides, parse_overrides, reject_code_overrides

    config_name, recorded = recorded_invocation(run_dir)
    config_dirs = recorded_config_dirs(run_dir)
    reject_code_overrides(overrides)
    check_overrides(config_name, parse_overrides([*recorded, *overrides]), config_dirs)
    cfg = compose_config(config_name, [*recorded, *overrides], config_dirs)
    return resolve(cfg)


def restore_model(config: dict[str, Any], checkpoint: Path) -> tuple[Any, Any, Any]:
    """(plan, tokenizer, model) with the checkpoint's weights loaded."""
    from codex_ml.run.assemble import build, build_model, plan
    from codex_ml.training.checkpoint import load_checkpoint

    p = plan(config, groups=("tokenizer", "model", "data", "reward_model"))
    tokenizer = build(p, "tokenizer")
    model = build_model(p, tokenizer)
    load_checkpoint(checkpoint, model)
    return p, tokenizer, model
