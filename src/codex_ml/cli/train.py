"""``codex-ml train [OVERRIDES]``: compose a run with Hydra and train it.

Standard Hydra syntax: ``model=offline/minilm training.max_steps=200``,
``-cn offline/catalogue``, ``-m training.lr=1e-3,3e-3``, ``--cfg job``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def _distributed_overrides(argv: Sequence[str]) -> list[str]:
    """Under torchrun, every rank must agree on one run directory, and only rank 0 logs."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return []
    extra = []
    if not any(arg.startswith("hydra.run.dir=") for arg in argv):
        run_id = os.environ.get("TORCHELASTIC_RUN_ID", "ddp")
        extra.append(f"hydra.run.dir=runs/torchrun-{run_id}")
    if int(os.environ.get("RANK", "0")) != 0:
        extra += ["hydra.output_subdir=null", "hydra/job_logging=disabled"]
    return extra


#: Hydra options that take a value (``-cn NAME``); the rest are flags or overrides.
_VALUED_OPTIONS = {
    "-cn",
    "--config-name",
    "-cp",
    "--config-path",
    "-cd",
    "--config-dir",
    "-c",
    "--cfg",
    "-p",
    "--package",
    "--experimental-rerun",
}


def options_first(argv: Sequence[str]) -> list[str]:
    """Move Hydra's options before the overrides, where its parser expects them.

    ``codex-ml train model=x -cn offline/catalogue`` then works as the other
    order does.
    """
    options: list[str] = []
    overrides: list[str] = []
    expects_value = False
    for arg in argv:
        if expects_value:
            options.append(arg)
            expects_value = False
        elif arg.startswith("-"):
            options.append(arg)
            expects_value = arg in _VALUED_OPTIONS
        else:
            overrides.append(arg)
    return [*options, *overrides]


def run(argv: Sequence[str]) -> int:
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from codex_ml.cli.errors import reported
    from codex_ml.resources import configs_dir
    from codex_ml.run.resolvers import register_resolvers

    register_resolvers()
    if not any(arg in ("--help", "-h", "--hydra-help", "--info") for arg in argv):
        from codex_ml.cli.errors import report
        from codex_ml.run.precheck import precheck

        try:
            precheck(argv)
        except Exception as exc:
            return report("train", exc)
    status = 0

    @hydra.main(version_base="1.3", config_path=str(configs_dir()), config_name="train")
    def task(cfg) -> None:  # type: ignore[no-untyped-def]
        from pathlib import Path

        from codex_ml.run.train import train_job

        nonlocal status
        hydra_cfg = HydraConfig.get()
        with reported("train"):
            status = max(
                status,
                train_job(
                    cfg,
                    run_dir=Path(hydra_cfg.runtime.output_dir),
                    config_name=hydra_cfg.job.config_name,
                    overrides=list(hydra_cfg.overrides.task),
                ),
            )

    saved_argv = sys.argv
    sys.argv = ["codex-ml train", *options_first(argv), *_distributed_overrides(argv)]
    try:
        task()
    finally:
        sys.argv = saved_argv
    return status
