"""Bring a finished (or interrupted) run back: its config, tokenizer and trained model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_ml import runfiles
from codex_ml.config import ConfigError

if TYPE_CHECKING:
    from codex_ml.run.assemble import Plan


@dataclass(frozen=True)
class RunLocation:
    """A run directory and the checkpoint in it to use."""

    run_dir: Path
    checkpoint: Path


def locate(target: str | Path, choice: str | None = None) -> RunLocation:
    """Accept a run directory, its ``checkpoints/`` or one ``checkpoints/step-N``.

    ``choice`` (``--checkpoint``: latest, best or step-N) picks the checkpoint
    in the run's own ``checkpoints/``; None takes the one ``target`` names.
    """
    from codex_ml.run.checkpoint_choice import chosen_checkpoint
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
    if choice is not None:
        checkpoint = chosen_checkpoint(run_dir, choice)
    return RunLocation(run_dir, checkpoint)


def run_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides that shape a run's components: not Hydra's own, not ``training.resume``."""
    return [o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "training.resume"))]


def recorded_invocation(run_dir: Path) -> tuple[str, list[str]]:
    """The config name and overrides the run was started with (from Hydra's own record)."""

    hydra_dir = run_dir / runfiles.RECORD_DIR
    config_name = load_record(hydra_dir / "hydra.yaml").hydra.job.config_name
    overrides = list(load_record(hydra_dir / "overrides.yaml"))
    return str(config_name), run_overrides(overrides)


#: The most a run's YAML record (``config.yaml``, ``.hydra/*.yaml``) is read of.
RECORD_LIMIT = 16 * 2**20


def load_record(path: Path) -> Any:
    """A YAML file a run wrote, read only if it is a regular file of bounded size (never a pipe
    that would hang the read, or a link to a device that would never end)."""
    from omegaconf import OmegaConf

    from codex_ml.regularfile import read_regular_text

    return OmegaConf.create(read_regular_text(path, limit=RECORD_LIMIT))


def resume_command(run_dir: Path) -> str:
    """The shell command that continues a run: it starts from the run's own recorded config."""
    import shlex

    return shlex.join(["codex-ml", "train", f"training.resume={run_dir}"])


def find_run_dir(target: str | Path) -> Path | None:
    """The run directory holding ``target`` (the run, its checkpoints/ or one step-N), if any."""
    path = Path(target).expanduser()
    return next((p for p in (path, *list(path.parents)[:2]) if (p / ".hydra").is_dir()), None)


@dataclass(frozen=True)
class Invocation:
    """A preset name, overrides and ``-cd`` folders: what a run is composed from."""

    config_name: str
    overrides: list[str]
    config_dirs: list[str]


def resumed_invocation(
    given: Invocation, *, config_name_given: bool
) -> tuple[Invocation, Path | None]:
    """``given`` on top of the recorded invocation of the run ``training.resume`` names.

    A run resumed with nothing but ``training.resume=RUN`` gets back its own
    preset, overrides and ``-cd`` folders, so the model fits its checkpoint;
    overrides on the command line apply on top. Returns the run directory too.
    """
    from codex_ml.run.invocation import recorded_config_dirs

    target = next(
        (o.split("=", 1)[1] for o in given.overrides if o.startswith("training.resume=")), None
    )
    run_dir = find_run_dir(target) if target else None
    if run_dir is None:
        return given, None
    name, recorded = recorded_invocation(run_dir)
    combined = Invocation(
        given.config_name if config_name_given else name,
        [*recorded, *given.overrides],
        [*recorded_config_dirs(run_dir), *given.config_dirs],
    )
    return combined, run_dir


#: Model settings a resume may change: they do not change the shape of the weights.
_SHAPELESS = frozenset({"device", "dtype", "dropout", "seed", "attn_implementation"})


def check_resume_shape(run_dir: Path, config: dict[str, Any]) -> None:
    """Refuse a resume whose tokenizer or model settings differ from the run's own."""
    from omegaconf import OmegaConf

    recorded_file = run_dir / runfiles.CONFIG
    if not recorded_file.is_file():
        return
    recorded = OmegaConf.to_container(load_record(recorded_file))
    assert isinstance(recorded, dict)
    for group in ("tokenizer", "model", "adapter"):
        mine, theirs = config.get(group) or {}, recorded.get(group) or {}
        for key in sorted(set(mine) | set(theirs)):
            if group == "model" and key in _SHAPELESS:
                continue
            if mine.get(key) != theirs.get(key):
                raise ConfigError(
                    f"{group}.{key}: resuming {run_dir}, whose {group} has {key}="
                    f"{theirs.get(key)!r}, with {key}={mine.get(key)!r}; the checkpoint's weights "
                    f"would not fit. Drop that override, or start a new run.",
                    where=f"{group}.{key}",
                )


def compose_run(
    run_dir: Path, overrides: Sequence[str], config_dirs: Sequence[str] = ()
) -> dict[str, Any]:
    """The run's config, recomposed with the given overrides on top, resolved."""
    from codex_ml.run.assemble import resolve
    from codex_ml.run.compose import compose_config
    from codex_ml.run.invocation import recorded_config_dirs
    from codex_ml.run.precheck import check_overrides, parse_overrides, reject_code_overrides

    config_name, recorded = recorded_invocation(run_dir)
    config_dirs = [*recorded_config_dirs(run_dir), *config_dirs]
    reject_code_overrides(overrides)
    check_overrides(config_name, parse_overrides([*recorded, *overrides]), config_dirs)
    cfg = compose_config(config_name, [*recorded, *overrides], config_dirs)
    return resolve(cfg)


def restore_model(config: dict[str, Any], checkpoint: Path) -> tuple[Plan, Any, Any]:
    """(plan, tokenizer, model) with the checkpoint's weights loaded (the run's own tokenizer).

    An adapter run's model is its base, built as the run built it, with the
    run's adapter applied and the checkpoint's trained tensors loaded into it.
    """
    from codex_ml.run.assemble import build_model, plan
    from codex_ml.run.tokenizer import restore_tokenizer
    from codex_ml.training.checkpoint import load_checkpoint

    p = plan(config, groups=("tokenizer", "model", "adapter", "data", "reward_model"))
    tokenizer = restore_tokenizer(p, find_run_dir(checkpoint))
    model = build_model(p, tokenizer)
    load_checkpoint(checkpoint, model)
    return p, tokenizer, model
