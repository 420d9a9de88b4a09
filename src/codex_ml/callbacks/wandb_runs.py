"""``wandb``: one Weights & Biases run per codex-ml run, offline under ``<run_dir>/wandb/``.

Offline unless the user sets ``WANDB_MODE`` (``online`` needs a W&B API key):
a run directory is then complete on its own, nothing leaves the machine, and
``wandb sync <run_dir>/wandb/offline-run-*`` uploads it later if wanted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from codex_ml.callbacks.scalars import flatten, scalars

#: The folder in the run directory that wandb writes its run folders in.
WANDB_DIR = "wandb"
#: wandb's modes that talk to a server (the rest: offline, dryrun, disabled).
ONLINE_MODES = ("online", "run", "shared")
#: What codex-ml asks of wandb unless the environment already says otherwise: no crash
#: reports sent to W&B, no wandb banner, and the terminal (and its capture) left to codex-ml.
ENV_DEFAULTS = {"WANDB_ERROR_REPORTING": "false", "WANDB_SILENT": "true", "WANDB_CONSOLE": "off"}
#: Summary statuses of a run that ended as asked (the others end the W&B run as failed).
_FINISHED = ("completed", "stopped")


def wandb_mode() -> str:
    """``$WANDB_MODE``, else ``offline``: a server only when the user asked for one."""
    return os.environ.get("WANDB_MODE") or "offline"


class WandbCallback:
    """The flattened config, every number at its step, and the summary, in one W&B run.

    Config keys are ``a.b.c`` paths of the resolved config (secrets redacted as in
    ``config.yaml``); numbers are named as in ``metrics.jsonl``; the summary's
    numbers are flattened the same way. The W&B run goes to ``project`` (else
    ``$WANDB_PROJECT``, else ``codex-ml``), is named after the run directory (or
    ``run_name``: ``name`` is the registry key in a config fragment) and ends
    with exit code 0 when the codex-ml run completed or was stopped early, 1
    otherwise. Rank 0 only.
    """

    def __init__(
        self,
        project: str | None = None,
        entity: str | None = None,
        run_name: str | None = None,
        tags: Sequence[str] = (),
        name: str | None = None,
    ) -> None:
        """``name`` is ``run_name`` for Python callers (``get_callback("wandb", name=...)``); in
        a config fragment ``name`` is the registry key, so presets use ``run_name``."""
        import wandb  # missing: the "wandb" extra, named before training

        self._wandb: Any = wandb
        self.project: str | None = project
        self.entity: str | None = entity
        self.run_name: str | None = run_name if run_name is not None else name
        self.tags: tuple[str, ...] = tuple(str(tag) for tag in tags)
        self._run: Any = None
        if wandb_mode() in ONLINE_MODES:
            self._check_credentials()

    def _check_credentials(self) -> None:
        """Refuse an online run without a key now, not with a login prompt mid-run."""
        if not self._wandb.login(prompt=False, verify=False):
            raise ValueError(
                f"callbacks.wandb: WANDB_MODE={wandb_mode()} sends the run to a W&B server, "
                "but no W&B API key is configured. Set WANDB_API_KEY (or run `wandb login`), "
                "or unset WANDB_MODE to record the run offline under <run_dir>/wandb/."
            )

    def on_train_start(self, run: Any) -> None:
        if not run.is_main:
            return
        from codex_ml import fsio

        for name, value in ENV_DEFAULTS.items():
            os.environ.setdefault(name, value)
        fsio.make_dir(Path(run.run_dir) / WANDB_DIR)  # never through a link
        self._run = self._wandb.init(
            dir=str(run.run_dir),
            mode=wandb_mode(),
            project=self.project or os.environ.get("WANDB_PROJECT") or "codex-ml",
            entity=self.entity,
            name=self.run_name or Path(run.run_dir).name,
            tags=self.tags or None,
            config=flatten(run.plain_config()),
        )

    def on_log(self, run: Any, record: Mapping[str, Any]) -> None:
        self._log(record)

    def on_evaluate(self, run: Any, metrics: Mapping[str, Any]) -> None:
        self._log(metrics)

    def on_train_end(self, run: Any, summary: Mapping[str, Any]) -> None:
        if self._run is None:
            return
        # The last step's row is still pending: commit it first, or the summary wandb derives
        # from it (its eval_tokens, say) would be written after, and over, the run's own.
        self._run.log({}, commit=True)
        self._run.summary.update(scalars(flatten(summary)))
        self._run.finish(exit_code=0 if summary.get("status") in _FINISHED else 1)
        self._run = None

    def _log(self, record: Mapping[str, Any]) -> None:
        numbers = scalars(record)
        if self._run is not None and numbers:
            self._run.log(numbers, step=int(record.get("step", 0)))
