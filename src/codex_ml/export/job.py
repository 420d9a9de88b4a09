"""``export_run``: a trained run as a folder that ``transformers`` loads on its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_ml.export.folder import check_target, publish
from codex_ml.export.source import RunSource, load_source


@dataclass(frozen=True)
class ExportResult:
    """What was exported where, as what, and how many prompts verified it."""

    out: Path
    run_dir: Path
    checkpoint: Path
    architecture: str
    verified_prompts: int


def export_run(
    target: str | Path,
    out: str | Path,
    *,
    checkpoint: str | None = None,
    force: bool = False,
    adapter_only: bool = False,
    config_dirs: Sequence[str] = (),
) -> ExportResult:
    """Write the run at ``target`` (its ``checkpoint``: latest, best or step-N) into ``out``.

    A non-empty ``out`` is refused before anything is read, unless ``force``.
    The folder is written beside ``out``, verified against the run's own greedy
    generation, and only then renamed into place. An adapter run is merged
    into its base weights, or with ``adapter_only`` written as a ``peft``
    adapter folder (:mod:`codex_ml.export.adapter_folder`).
    """
    from codex_ml.export.verify import quiet_transformers

    out = Path(out).expanduser().absolute()
    check_target(out, force=force)
    source = load_source(target, checkpoint, config_dirs)
    if adapter_only:
        from codex_ml.export.adapter_folder import adapter_parts, write_adapter_folder

        adapter_parts(source.model)  # refused before anything is written
    written: dict[str, tuple[str, int]] = {}

    def fill(staging: Path) -> None:
        if adapter_only:
            written["folder"] = write_adapter_folder(staging, out, source.model, source.tokenizer)
        else:
            written["folder"] = write_merged(staging, exportable_model(source), source)

    with quiet_transformers():
        publish(out, fill, force=force)
    architecture, verified = written["folder"]
    return ExportResult(out, source.run_dir, source.checkpoint, architecture, verified)


def write_merged(folder: Path, model: Any, source: RunSource) -> tuple[str, int]:
    """``model`` as a ``transformers`` folder, checked; (architecture, prompts compared)."""
    from codex_ml.export.model_files import write_model
    from codex_ml.export.tokenizer_files import write_tokenizer
    from codex_ml.export.verify import verify_folder
    from codex_ml.models.sampling import context_length

    architecture = write_model(folder, model, source.tokenizer)
    write_tokenizer(folder, source.tokenizer, context_length(model))
    return architecture, verify_folder(folder, model, source.tokenizer)


def exportable_model(source: RunSource) -> Any:
    """The model whose weights are written: the run's model as trained.

    An adapter run's adapter is merged into the base weights here
    (:func:`codex_ml.training.checkpoint.trainable.merged`), so ``write_model``
    sees a plain model of the base's type.
    """
    from codex_ml.training.checkpoint.trainable import merged

    return merged(source.model)
