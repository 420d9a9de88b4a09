"""Hugging Face tokenizers behind codex-ml's small tokenizer protocol.

Everything here loads offline by default: a name that is not a local directory
or already in the Hugging Face cache is an error, never a silent download.

Special ids follow the tokenizer's own, with fallbacks so that every tokenizer
can pad and mark ends:

- ``pad_id``: the pad token, else eos (GPT-2 and Llama define no pad token;
  padded positions carry attention mask 0, so which id fills them is moot);
- ``eos_id``: the eos token, else sep (BERT-style tokenizers);
- ``bos_id``: the bos token, else cls, else eos.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from codex_ml.artefacts import resolve_artefact_dir
from codex_ml.remote_code import refuse_remote_code
from codex_ml.tokenizers.batching import BatchEncodeMixin

# A directory without one of these has no tokenizer in it; transformers would
# otherwise build an empty tokenizer from config.json alone without complaint.
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
)


class HFTokenizer(BatchEncodeMixin):
    """A ``transformers`` tokenizer seen through the codex-ml tokenizer protocol."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, *, add_special_tokens: bool = False):
        self.hf_tokenizer = tokenizer
        # Off by default, like ByteTokenizer: plain text in, plain ids out. The
        # trainer decides where documents start and end.
        self.add_special_tokens = add_special_tokens
        self.eos_id: int = _first_id(tokenizer, "eos_token_id", "sep_token_id")
        self.bos_id: int = _first_id(tokenizer, "bos_token_id", "cls_token_id", "eos_token_id")
        self.pad_id: int = _first_id(tokenizer, "pad_token_id", "eos_token_id", "sep_token_id")

    @property
    def vocab_size(self) -> int:
        """Every id the tokenizer can produce, added tokens included (size of an embedding)."""
        return len(self.hf_tokenizer)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        return list(self.hf_tokenizer.encode(text, add_special_tokens=self.add_special_tokens))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` with special tokens dropped."""
        return self.hf_tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    def __repr__(self) -> str:
        name = getattr(self.hf_tokenizer, "name_or_path", "?")
        return f"HFTokenizer({name!r}, vocab_size={self.vocab_size})"


def load_hf_tokenizer(
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    local_files_only: bool = True,
    revision: str | None = None,
    add_special_tokens: bool = False,
) -> HFTokenizer:
    """Load a Hugging Face tokenizer from a directory or the local cache (offline by default)."""
    if name_or_path is None or not str(name_or_path).strip():
        raise ValueError(
            "The 'hf' tokenizer needs a name or directory: set tokenizer.name_or_path in the "
            "config (or pass name_or_path=...) to a directory holding tokenizer files, or to a "
            "Hugging Face hub id that is already in the local cache."
        )
    source = os.fspath(name_or_path)
    if Path(source).expanduser().exists():
        return HFTokenizer(
            _load_local(Path(source).expanduser()), add_special_tokens=add_special_tokens
        )
    if _looks_like_path(source):
        raise FileNotFoundError(
            f"Tokenizer directory {source!r} does not exist. Pass an existing directory that "
            "holds tokenizer files (tokenizer.json, tokenizer_config.json, ...)."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source, local_files_only=local_files_only, revision=revision, trust_remote_code=False
        )
    except OSError as exc:
        if not local_files_only:
            raise
        raise FileNotFoundError(
            f"Tokenizer {source!r} is not a local directory and is not in the Hugging Face cache, "
            "and codex-ml loads tokenizers offline (local_files_only=True). Point "
            "tokenizer.name_or_path at a directory with the tokenizer files (save_pretrained "
            "output), or download it once where there is network and pass "
            "local_files_only=False."
        ) from exc
    return HFTokenizer(tokenizer, add_special_tokens=add_special_tokens)


def gpt2_offline_tokenizer(path: str | os.PathLike[str] | None = None) -> HFTokenizer:
    """GPT-2 tokenizer from local files (path=, $CODEX_ML_GPT2_DIR, or artifacts/models/gpt2/)."""
    return load_hf_tokenizer(resolve_artefact_dir("gpt2-offline", "gpt2", path))


def tinyllama_offline_tokenizer(path: str | os.PathLike[str] | None = None) -> HFTokenizer:
    """TinyLlama tokenizer from local files (path=, $CODEX_ML_TINYLLAMA_DIR, or the default dir)."""
    return load_hf_tokenizer(resolve_artefact_dir("tinyllama-offline", "tinyllama", path))


def _load_local(directory: Path) -> PreTrainedTokenizerBase:
    if not directory.is_dir():
        raise NotADirectoryError(
            f"Tokenizer path {str(directory)!r} is a file; pass the directory that holds it."
        )
    if not any((directory / name).is_file() for name in _TOKENIZER_FILES):
        raise FileNotFoundError(
            f"Directory {str(directory)!r} holds no tokenizer files (expected one of "
            f"{', '.join(_TOKENIZER_FILES)}). Save a tokenizer there with save_pretrained()."
        )
    refuse_remote_code(directory, option="tokenizer.name_or_path", kind="tokenizer")
    try:
        return AutoTokenizer.from_pretrained(
            directory, local_files_only=True, trust_remote_code=False
        )
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"Could not load a tokenizer from {str(directory)!r}: {exc}. Re-save it with "
            "save_pretrained() from a working tokenizer."
        ) from exc


def _looks_like_path(source: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else that does not exist was
    # meant as a path.
    return (
        source.startswith((".", "~", os.sep))
        or (os.altsep is not None and os.altsep in source)
        or source.count("/") > 1
    )


def _first_id(tokenizer: PreTrainedTokenizerBase, *attributes: str) -> int:
    for attribute in attributes:
        value = getattr(tokenizer, attribute, None)
        if value is not None:
            return int(value)
    names = " / ".join(a.removesuffix("_token_id") for a in attributes)
    raise ValueError(
        f"Tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} defines none of the special "
        f"tokens {names}; codex-ml needs one to pad and mark sequence ends. Add it with "
        "tokenizer.add_special_tokens(...) and save_pretrained() the tokenizer again."
    )
