"""A run's tokenizer: built from its spec, trained first where it trains, kept in the run.

A tokenizer whose factory takes ``corpus`` trains (``bpe``): the run hands it
its training split (:func:`codex_ml.run.prepare.training_corpus`) before the
token store is built, and the store's fingerprint then holds the trained
tokenizer's identity (its vocabulary and merges). The trained tokenizer is
saved into the run directory as ``tokenizer/`` (Hugging Face files that
``AutoTokenizer.from_pretrained`` loads), and everything that comes back to
the run later (``evaluate``, ``generate``, ``export``, a resume) loads it from
there, so the ids stay the run's even if the data has changed since.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_ml.run.assemble import Plan, build, data_source, parameter_names

#: The run directory's folder of a trained tokenizer.
TOKENIZER_DIR = "tokenizer"
#: The factory parameter through which a tokenizer that trains gets its corpus.
CORPUS_PARAMETER = "corpus"


def trains(p: Plan) -> bool:
    """Whether the plan's tokenizer is trained on the run's data (its factory takes ``corpus``)."""
    return CORPUS_PARAMETER in (parameter_names(p.factory("tokenizer")) or set())


def run_tokenizer(p: Plan, *, earlier_run: Path | None = None) -> Any:
    """The run's tokenizer; one that trains is trained on the training split (or loaded).

    ``earlier_run``: the run this one resumes, whose saved tokenizer is used as it is.
    """
    if not trains(p):
        return build(p, "tokenizer")
    saved = saved_tokenizer(earlier_run) if earlier_run is not None else None
    if saved is not None:
        return saved
    from codex_ml.run.prepare import training_corpus

    return build(p, "tokenizer", **{CORPUS_PARAMETER: training_corpus(data_source(p))})


def restore_tokenizer(p: Plan, run_dir: Path | None) -> Any:
    """The tokenizer of the run in ``run_dir``: its saved ``tokenizer/``, else built again."""
    if trains(p) and run_dir is not None:
        saved = saved_tokenizer(run_dir)
        if saved is not None:
            return saved
    return run_tokenizer(p)


def saved_tokenizer(run_dir: Path) -> Any | None:
    """The tokenizer saved in ``run_dir/tokenizer/``, or None when there is none."""
    folder = run_dir / TOKENIZER_DIR
    if not folder.is_dir():
        return None
    from codex_ml.tokenizers.hf import load_hf_tokenizer

    return load_hf_tokenizer(folder)


def keep_tokenizer(p: Plan, run_dir: Path, tokenizer: Any) -> Path | None:
    """Save a trained tokenizer into ``run_dir/tokenizer/`` (whole, or not at all)."""
    hf_tokenizer = getattr(tokenizer, "hf_tokenizer", None)
    if not trains(p) or hf_tokenizer is None:
        return None
    from codex_ml import publish

    target = run_dir / TOKENIZER_DIR
    publish.publish_folder(
        target,
        lambda staging: hf_tokenizer.save_pretrained(staging),
        staging_prefix=f".{TOKENIZER_DIR}.saving-",
        aside_prefix=f".{TOKENIZER_DIR}.old-",
    )
    return target
