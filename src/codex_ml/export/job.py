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
    config_dirs: Sequence[str] = (),
) -> ExportResult:
    """Write the run at ``target`` (its ``checkpoint``: latest, best or step-N) into ``out``.

    A non-empty ``out`` is refused before anything is read, unless ``force``.
    The folder is written beside ``out``, verified against the run's own greedy
    generation, and only then renamed into place.
    """
    from codex_ml.export.model_files import write_model
    from codex_ml.export.tokenizer_files import write_tokenizer
    from codex_ml.export.verify import quiet_transformers, verify_folder
    from codex_ml.models.sampling import context_length

    out = Path(out).expanduser().absolute()
    check_target(out, force=force)
    source = load_source(target, checkpoint, config_dirs)
    model = exportable_model(source)
    written: dict[str, Any] = {}

    def fill(staging: Path) -> None:
        written["architecture"] = write_model(staging, model, source.tokenizer)
        write_tokenizer(staging, source.tokenizer, context_length(model))
        written["verified"] = verify_folder(staging, model, source.tokenizer)

    with quiet_transformers():
        publish(out, fill, force=force)
    return ExportResult(
        out, source.run_dir, source.checkpoint, written["architecture"], written["verified"]
    )


def exportable_model(source: RunSource) -> Any:
    """The model whose weights are written: the run's model as trained.

    This is where an adapter run's adapter will be merged into the base
    weights (or, with ``--adapter-only``, kept apart in peft's format) once
    runs can train adapters; ``write_model`` then sees a plain model.
    """
    return source.model
