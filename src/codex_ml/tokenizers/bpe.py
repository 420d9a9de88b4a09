"""A byte-level BPE tokenizer trained on the run's own training split: the ``bpe`` key.

``tokenizer=offline/bpe`` trains GPT-2's kind of tokenizer with the
``tokenizers`` library (the same model, pre-tokenizer, decoder and trainer as
its ``ByteLevelBPETokenizer``) on the run's training records, streamed, at most
``max_train_bytes`` UTF-8 bytes of them (the first records, in the split's
order). Any text encodes, since the 256 bytes are in the vocabulary from the
start; ``special_tokens`` come first (ids 0, 1, ...) and ``eos_token``, one
of them, ends each record in the token stream.

A factory that takes a ``corpus`` argument is one that trains: ``codex-ml
train`` and ``prepare`` pass it the run's training split
(``codex_ml.run.tokenizer``), whose ``fingerprint`` says which records it
holds. A trained tokenizer is kept under
``$CODEX_ML_CACHE_DIR/tokenizers/<fingerprint>/`` (the fingerprint is of that
corpus and these settings), so the same data and settings train once; the run
copies it into its own ``tokenizer/``, which ``evaluate``, ``generate``,
``export`` and a resume load. A corpus without a fingerprint (a plain list
given to ``get_tokenizer("bpe", corpus=...)``) is hashed; a generator is
trained on each time and cached nowhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from codex_ml.tokenizers.hf import HFTokenizer, load_hf_tokenizer

#: Bumped when what a trained tokenizer is made from changes; older ones are then retrained.
FORMAT = 1
#: GPT-2's end of text: the default (and only) special token.
END_OF_TEXT = "<|endoftext|>"
#: Records handed to the trainer at a time (it reads lists as well as single texts).
_BATCH = 1024
#: The file that marks a cached tokenizer as complete and says what it was trained on.
TRAINED_FILE = "codex_ml_bpe.json"


def bpe_tokenizer(
    *,
    corpus: Iterable[str] | None = None,
    vocab_size: int = 8192,
    min_frequency: int = 2,
    special_tokens: Sequence[str] = (END_OF_TEXT,),
    eos_token: str = END_OF_TEXT,
    max_train_bytes: int | None = 1_000_000_000,
) -> HFTokenizer:
    """A byte-level BPE of ``vocab_size`` tokens trained on ``corpus`` (cached by fingerprint)."""
    settings = _settings(vocab_size, min_frequency, special_tokens, eos_token, max_train_bytes)
    if corpus is None:
        raise ValueError(
            "tokenizer 'bpe' is trained on a corpus: codex-ml train and prepare pass the run's "
            "training split; called directly, pass corpus=<texts>."
        )
    identity = corpus_fingerprint(corpus)
    if identity is None:
        return HFTokenizer(_as_transformers(train_bpe(corpus, **settings), eos_token))
    folder = cache_root() / _digest({"corpus": identity, "settings": settings, "format": FORMAT})
    if not (folder / TRAINED_FILE).is_file():
        _train_into(folder, corpus, settings, identity)
    return load_hf_tokenizer(folder)


def train_bpe(
    corpus: Iterable[str],
    *,
    vocab_size: int,
    min_frequency: int,
    special_tokens: Sequence[str],
    eos_token: str,
    max_train_bytes: int | None,
) -> Any:
    """A ``tokenizers.Tokenizer``: ``ByteLevelBPETokenizer``'s pipeline, trained on ``corpus``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        show_progress=False,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(capped_batches(corpus, max_train_bytes), trainer=trainer)
    return tokenizer


def capped_batches(corpus: Iterable[str], max_bytes: int | None) -> Iterator[list[str]]:
    """Lists of the corpus's non-empty texts until ``max_bytes`` UTF-8 bytes (None: all).

    The text that crosses the cap is cut at it (on a character boundary).
    """
    batch: list[str] = []
    left = max_bytes
    for text in corpus:
        if not text:
            continue
        if left is not None:
            size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
            if size >= left:
                cut = text.encode("utf-8", "surrogatepass")[:left]
                batch.append(cut.decode("utf-8", "ignore"))
                break
            left -= size
        batch.append(text)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def corpus_fingerprint(corpus: Iterable[str]) -> str | None:
    """What the corpus is: its own ``fingerprint`` (or ``fingerprint()``), or a list's hash."""
    own = getattr(corpus, "fingerprint", None)
    if callable(own):
        own = own()
    if own is not None:
        return str(own)
    if isinstance(corpus, list | tuple):
        text = hashlib.sha256()
        for record in corpus:
            text.update(str(record).encode("utf-8", "surrogatepass") + b"\0")
        return f"content:{text.hexdigest()}"
    return None


def cache_root() -> Path:
    """``tokenizers/`` in codex-ml's cache folder."""
    from codex_ml.cache import cache_folder

    return Path(cache_folder()) / "tokenizers"


def _train_into(
    folder: Path, corpus: Iterable[str], settings: dict[str, Any], identity: str
) -> None:
    """Train, save as Hugging Face files and publish at ``folder`` (another process's kept)."""
    import time

    from codex_ml import fsio, publish

    def fill(staging: Path) -> None:
        started = time.perf_counter()
        tokenizer = train_bpe(corpus, **settings)
        _as_transformers(tokenizer, settings["eos_token"]).save_pretrained(staging)
        record = {
            "format": FORMAT,
            "corpus": identity,
            "settings": settings,
            "vocab_size": tokenizer.get_vocab_size(),
            "seconds": round(time.perf_counter() - started, 3),
        }
        fsio.write_atomic(staging / TRAINED_FILE, json.dumps(record, indent=2) + "\n")

    folder.parent.mkdir(parents=True, exist_ok=True)
    publish.publish_folder(
        folder,
        fill,
        staging_prefix=f".{folder.name}.training-",
        aside_prefix=f".{folder.name}.old-",
        keep_existing=lambda existing: (existing / TRAINED_FILE).is_file(),
        durable=False,  # a cache: a tokenizer lost to a power cut is trained again
    )


def _as_transformers(tokenizer: Any, eos_token: str) -> Any:
    """The trained tokenizer as ``transformers`` saves and loads it (eos named)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token=eos_token, clean_up_tokenization_spaces=False
    )


def _settings(
    vocab_size: int,
    min_frequency: int,
    special_tokens: Sequence[str],
    eos_token: str,
    max_train_bytes: int | None,
) -> dict[str, Any]:
    """The settings, checked: each bad one is a ValueError naming it."""
    special = [str(token) for token in special_tokens]
    if (
        isinstance(vocab_size, bool)
        or not isinstance(vocab_size, int)
        or vocab_size < 256 + len(special)
    ):
        raise ValueError(
            f"vocab_size={vocab_size!r}: a byte-level BPE holds the 256 bytes and the "
            f"{len(special)} special tokens, so vocab_size must be at least {256 + len(special)}."
        )
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"min_frequency={min_frequency!r} must be an integer >= 1.")
    if eos_token not in special:
        raise ValueError(
            f"eos_token={eos_token!r} is not one of special_tokens={special}; add it there."
        )
    if max_train_bytes is not None and (
        isinstance(max_train_bytes, bool)
        or not isinstance(max_train_bytes, int)
        or max_train_bytes < 1
    ):
        raise ValueError(f"max_train_bytes={max_train_bytes!r} must be a positive integer or null.")
    return {
        "vocab_size": vocab_size,
        "min_frequency": min_frequency,
        "special_tokens": special,
        "eos_token": eos_token,
        "max_train_bytes": max_train_bytes,
    }


def _digest(value: Any) -> str:
    from tokenizers import __version__ as tokenizers_version

    text = json.dumps({**value, "tokenizers": tokenizers_version}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
