"""A token store on disk, and the checks that decide whether one may be used.

A store is a folder::

    header.json        what it holds and what it was made from (below)
    train.bin          the training split's ids, one flat array (uint16 or uint32)
    eval.bin           the held-out split's ids (may be empty)
    eval_texts.jsonl   the first held-out records as text (bounded), for text metrics

``header.json`` holds the format, the fingerprint (the folder's name under the
cache), the tokenizer's and the data's fingerprints, the dtype, each split's
token, record and UTF-8 byte counts, the codex-ml version and a sampled checksum of each
``.bin``. :func:`open_store` uses a folder only if all of that holds: a
missing or unreadable header (a half-written or foreign folder), another
fingerprint (stale), a file of the wrong size (truncated) or a checksum that
does not match (damaged) each make it refuse, with the reason.

Stores live in ``tokens/`` under codex-ml's cache folder (:func:`default_root`)
unless ``data.store=DIR`` names one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_ml.cache import cache_folder
from codex_ml.data.store.fingerprint import FORMAT

HEADER = "header.json"
SPLITS = ("train", "eval")
EVAL_TEXTS = "eval_texts.jsonl"
_SAMPLES = 16
_SAMPLE_BYTES = 1 << 16


def default_root() -> Path:
    """Where stores go by default: ``tokens/`` in the cache folder (:mod:`codex_ml.cache`)."""
    return Path(cache_folder()) / "tokens"


def dtype_for(vocab_size: int) -> str:
    """``uint16`` when every id fits in it, else ``uint32``."""
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


def sampled_checksum(path: Path) -> str:
    """A hash of the size and of up to 16 slices of 64 KiB spread over ``path``.

    Reading 1 MiB at most keeps a warm start fast on any corpus while still
    catching a truncated, zeroed or overwritten file.
    """
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        step = max(size // _SAMPLES, 1)
        for start in range(0, size, step) if size else ():
            handle.seek(start)
            h.update(handle.read(_SAMPLE_BYTES))
    return h.hexdigest()[:32]


@dataclass(frozen=True)
class TokenStore:
    """An opened, checked store: its folder and header; ids are mapped on request."""

    path: Path
    header: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        return str(self.header["fingerprint"])

    @property
    def dtype(self) -> str:
        return str(self.header["dtype"])

    def tokens(self, split: str) -> int:
        return int(self.header["splits"][split]["tokens"])

    def records(self, split: str) -> int:
        return int(self.header["splits"][split]["records"])

    def text_bytes(self, split: str) -> int | None:
        """UTF-8 bytes of the split's records (None: a store written before they were counted)."""
        counted = self.header["splits"][split].get("bytes")
        return None if counted is None else int(counted)

    def size_bytes(self) -> int:
        return sum((self.path / f"{split}.bin").stat().st_size for split in SPLITS)

    def ids(self, split: str) -> Any:
        """The split's ids as a read-only ``numpy.memmap`` (an empty array when it has none)."""
        import numpy as np

        if self.tokens(split) == 0:
            return np.empty(0, dtype=self.dtype)
        return np.memmap(self.path / f"{split}.bin", dtype=self.dtype, mode="r")

    def eval_texts(self) -> list[str]:
        """The held-out records kept as text (the first ones, up to the store's limit)."""
        path = self.path / EVAL_TEXTS
        with path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]


def read_header(folder: Path) -> dict[str, Any]:
    """The header of ``folder``; a ValueError saying why it cannot be used."""
    try:
        header = json.loads((folder / HEADER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError("it has no header.json (not a store, or one never finished)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"its header.json is unreadable ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"its header.json is not format {FORMAT}")
    return header


def check_store(folder: Path, fingerprint: str) -> TokenStore:
    """The store in ``folder`` if it is complete and made for ``fingerprint``; else ValueError."""
    header = read_header(folder)
    if header.get("fingerprint") != fingerprint:
        raise ValueError(
            f"it was made for other data or another tokenizer (fingerprint "
            f"{header.get('fingerprint')}, wanted {fingerprint})"
        )
    try:
        itemsize = 2 if header["dtype"] == "uint16" else 4
        for split in SPLITS:
            path = folder / f"{split}.bin"
            expected = int(header["splits"][split]["tokens"]) * itemsize
            actual = path.stat().st_size
            if actual != expected:
                raise ValueError(f"{path.name} has {actual:,} bytes, the header says {expected:,}")
            if sampled_checksum(path) != header["checksums"][split]:
                raise ValueError(f"{path.name} does not match its checksum (damaged)")
        if not (folder / EVAL_TEXTS).is_file():
            raise ValueError(f"{EVAL_TEXTS} is missing")
    except (KeyError, TypeError) as exc:
        raise ValueError(f"its header.json lacks {exc}") from None
    except FileNotFoundError as exc:
        raise ValueError(f"{Path(str(exc.filename)).name} is missing") from None
    return TokenStore(folder, header)


@dataclass(frozen=True)
class TokenSplit:
    """One split of a store as a trainer takes it: ``token_ids()`` is a 1-D integer array.

    Any object with that method can be given to the functional trainer in place
    of text records (see ``codex_ml.training.data.as_blocks``).
    """

    store: TokenStore
    split: str

    def token_ids(self) -> Any:
        return self.store.ids(self.split)

    def __repr__(self) -> str:
        return f"<{self.split} split of token store {self.store.path}>"
