"""What a run was started with, kept in ``<run>/.hydra/`` so that it can be recomposed.

The files keep the names and layout ``@hydra.main`` used (``config.yaml``
unresolved, ``overrides.yaml``, ``hydra.yaml``), so runs made before codex-ml
composed on its own still resume, evaluate and generate the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

RECORD_DIR = ".hydra"


def invocation_record(
    run_dir: Path,
    cfg: Any,
    *,
    config_name: str,
    overrides: Sequence[str],
    config_dirs: Sequence[str] = (),
) -> dict[str, Any]:
    """The files of ``<run>/.hydra/`` (name -> data): the unresolved config, overrides, preset.

    :meth:`codex_ml.run.outputs.RunWriter.write_invocation` writes them.
    """
    from omegaconf import OmegaConf

    job = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(job, dict)
    job.pop("hydra", None)
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices, resolve=False)
    hydra = {
        "hydra": {
            "run": {"dir": str(run_dir)},
            "job": {"config_name": config_name},
            "runtime": {
                "choices": {k: v for k, v in (choices or {}).items() if not k.startswith("hydra/")},
                "config_dirs": [str(Path(d).expanduser().resolve()) for d in config_dirs],
            },
            "overrides": {"task": list(overrides)},
        }
    }
    return {"config.yaml": job, "overrides.yaml": list(overrides), "hydra.yaml": hydra}


def recorded_config_dirs(run_dir: Path) -> list[str]:
    """The ``-cd`` folders a run was composed with (none for runs before they were recorded)."""
    from omegaconf import OmegaConf

    hydra_file = run_dir / RECORD_DIR / "hydra.yaml"
    if not hydra_file.is_file():
        return []
    dirs = OmegaConf.select(OmegaConf.load(hydra_file), "hydra.runtime.config_dirs")
    return [str(d) for d in dirs] if dirs is not None else []
