"""What a run leaves on disk, all in its run directory, secrets kept out.

``config.yaml`` (resolved), ``metrics.jsonl`` (one line per log step and per
evaluation), ``summary.json``, ``samples.jsonl``, ``loss_curve.png``, the
``.hydra/`` record of the invocation and the trainer's ``checkpoints/``. Whole
files are replaced atomically, so a run killed mid-write never leaves half a
summary behind, and nothing is written through a link planted in the run
directory (:mod:`codex_ml.fsio`): the directory is checked for links when the
writer opens it, before the run starts, and every write refuses one again.

A value the config read from a secret-looking environment variable
(``${oc.env:HF_TOKEN}``) is used by the run but never written down:
:class:`Redaction` replaces it in everything the writer writes, and in the
config the run's hooks and callbacks are shown (:mod:`codex_ml.config.secrets`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_ml import fsio, runfiles
from codex_ml.run.invocation import RECORD_DIR

METRICS_FILE = runfiles.METRICS
SUMMARY_FILE = runfiles.SUMMARY
SAMPLES_FILE = runfiles.SAMPLES
CONFIG_FILE = runfiles.CONFIG
PLOT_FILE = runfiles.PLOT
LOG_FILE = runfiles.LOG  # a run log, if one is written (fsio.SafeFileHandler opens it)
CHECKPOINTS_DIR = "checkpoints"  # the trainer's (codex_ml.training.checkpoint)
#: Every name a run writes at the top of its directory.
RUN_FILES = (
    CONFIG_FILE,
    METRICS_FILE,
    SUMMARY_FILE,
    SAMPLES_FILE,
    PLOT_FILE,
    LOG_FILE,
    CHECKPOINTS_DIR,
)
LOG_FIELDS = ("event", "step", "loss", "lr", "tokens_per_s", "elapsed", "tokens_seen")
#: ... and, for instruction data, the tokens that carried the loss.
LOG_FIELDS += ("loss_tokens_seen", "loss_tokens_per_s")


def write_json(path: Path, data: Any) -> None:
    """Write JSON through an exclusively created temporary file and an atomic rename."""
    fsio.write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


@dataclass(frozen=True)
class Redaction:
    """The secret values a run's config reads from the environment, and their markers."""

    secrets: Mapping[str, str] = field(default_factory=dict)  # value -> variable name

    @classmethod
    def of(cls, unresolved: Any) -> Redaction:
        """The secrets of a composed config, unresolved (an OmegaConf node or plain data)."""
        from omegaconf import OmegaConf

        from codex_ml.config.secrets import secret_values

        if OmegaConf.is_config(unresolved):
            unresolved = OmegaConf.to_container(unresolved, resolve=False)
        return cls(secret_values(unresolved))

    def __call__(self, data: Any) -> Any:
        """A copy of ``data`` (plain containers) with every secret value replaced by a marker."""
        from codex_ml.config.secrets import redact

        return redact(data, self.secrets)


class RunWriter:
    """Writes one run directory; also the trainer callback that appends ``metrics.jsonl``.

    Opening it refuses a run directory in which any of :data:`RUN_FILES` is a
    link, so a planted link stops the run before its first step, not at the end.
    Every file it writes has ``redaction`` applied first.
    """

    def __init__(self, run_dir: Path, redaction: Redaction | None = None) -> None:
        self.run_dir: Path = Path(run_dir)
        self.redaction: Redaction = redaction or Redaction()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fsio.refuse_links(self.run_dir, RUN_FILES)
        self._metrics = fsio.open_append(self.run_dir / METRICS_FILE)

    def __call__(self, record: Mapping[str, Any]) -> None:
        if record.get("event") == "log":
            row = {k: record[k] for k in LOG_FIELDS if k in record}
        elif record.get("event") == "eval":
            row = {k: v for k, v in record.items() if k != "path"}
        else:
            return
        self._metrics.write(json.dumps(row) + "\n")
        self._metrics.flush()

    def close(self) -> None:
        self._metrics.close()

    def write_invocation(self, record: Mapping[str, Any]) -> None:
        """``.hydra/``: the files of :func:`codex_ml.run.invocation.invocation_record`."""
        from omegaconf import OmegaConf

        folder = fsio.make_dir(self.run_dir / RECORD_DIR)
        for name, data in record.items():
            fsio.write_atomic(folder / name, OmegaConf.to_yaml(self.redaction(data)))

    def write_config(self, config: Mapping[str, Any]) -> None:
        from omegaconf import OmegaConf

        yaml = OmegaConf.to_yaml(OmegaConf.create(dict(self.redaction(config))))
        fsio.write_atomic(self.run_dir / CONFIG_FILE, yaml)

    def write_samples(self, samples: Sequence[Mapping[str, Any]]) -> None:
        with fsio.atomic_writer(self.run_dir / SAMPLES_FILE) as fh:
            for sample in self.redaction(list(samples)):
                fh.write(json.dumps(sample, ensure_ascii=False) + "\n")

    def write_summary(self, summary: Mapping[str, Any]) -> dict[str, Any]:
        """Write ``summary.json``; returns it as written, for the hooks and the console."""
        written = dict(self.redaction(summary))
        write_json(self.run_dir / SUMMARY_FILE, written)
        return written

    def plot(self, history: Sequence[Mapping[str, Any]]) -> Path | None:
        """The training (and eval) loss against the step, as a PNG."""
        train = [(r["step"], r["loss"]) for r in history if r.get("event") == "log"]
        evals = [(r["step"], r["eval_loss"]) for r in history if "eval_loss" in r]
        if not train:
            return None
        import logging

        import matplotlib

        matplotlib.use("Agg")
        logging.getLogger("matplotlib").setLevel(logging.WARNING)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        ax.plot(*zip(*train, strict=True), label="train loss")
        if evals:
            ax.plot(*zip(*evals, strict=True), "o-", label="eval loss")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/token)")
        ax.set_title(self.run_dir.name)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = self.run_dir / PLOT_FILE
        try:
            with fsio.atomic_writer(path, "wb") as fh:
                fig.savefig(fh, format="png")
        finally:
            plt.close(fig)
        return path


def package_versions() -> dict[str, str | None]:
    """Versions of what a run depends on, read from metadata (nothing is imported)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    names = ("codex-ml", "torch", "transformers", "tokenizers", "hydra-core", "omegaconf", "pluggy")
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions
