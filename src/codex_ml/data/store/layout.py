"""A token store on disk, and the checks that decide whether one may be used.

A store is a folder::

    .codex-ml-token-store  the mark of a folder codex-ml made (what, format, owner)
    header.json        what it holds and what it was made from (below)
    train.bin          the training split's ids, one flat array (uint16 or uint32)
    eval.bin           the held-out split's ids (may be empty)
    eval_texts.jsonl   the first held-out records as text (bounded), for text metrics
    train.mask         instruction data only: a flag byte per id of train.bin (LOSS, START;
    eval.mask          see codex_ml.data.store.examples), and likewise for eval.bin

``header.json`` holds the format, the fingerprint (the folder's name under the
cache), the tokenizer's and the data's fingerprints, the dtype, each split's
token and record counts (with, for text, its UTF-8 byte count and, for
instruction data, the tokens that carry the loss), the codex-ml version, and
the size and checksum of every other file (:data:`CHECKED_FILES`, and
:data:`MASK_FILES` for instruction data: a store of plain text has none, and is
exactly what it was before masks existed).
:func:`check_store` uses a folder only if all of that holds: no mark or a
missing or unreadable header (a half-written or foreign folder), another
fingerprint (stale), a dtype that is not an id dtype or does not fit the
vocabulary, a file of the wrong size (truncated), a checksum that does not
match (damaged), a sampled id outside the vocabulary or a sampled byte of a
mask that is no flag each make it refuse, with the reason. Every file is read
through :mod:`codex_ml.regularfile`: a named pipe, a device or a link in a
store is damage, never something to block on or read without end.

Stores live in ``tokens/`` under codex-ml's cache folder (:func:`default_root`)
unless ``data.store=DIR`` names one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from codex_ml.cache import cache_folder
from codex_ml.data.store.fingerprint import FORMAT
from codex_ml.regularfile import open_regular, read_regular_text

HEADER = "header.json"
#: The file that marks a folder as a token store codex-ml made (written first, checked first).
MARKER = ".codex-ml-token-store"
MARKER_WHAT = "codex-ml token store"
SPLITS = ("train", "eval")
EVAL_TEXTS = "eval_texts.jsonl"
#: The files the header records the size and checksum of.
CHECKED_FILES = (*(f"{s}.bin" for s in SPLITS), EVAL_TEXTS)
#: The loss masks of instruction data: one flag byte per id, beside each split's ids.
MASK_FILES = tuple(f"{s}.mask" for s in SPLITS)
#: Every name a store holds.
STORE_FILES = frozenset({MARKER, HEADER, *CHECKED_FILES, *MASK_FILES})
#: The dtypes a store keeps ids in, and their sizes.
ID_DTYPES = {"uint16": 2, "uint32": 4}
#: The dtype of a mask, and its flags: a token that carries the loss, an example's first token.
MASK_DTYPE = "uint8"
LOSS = 1
START = 2
#: The highest flag byte, plus one.
FLAG_LIMIT = (LOSS | START) + 1
_ITEM_SIZES = {**ID_DTYPES, MASK_DTYPE: 1}
#: The most a header or a mark can hold (a header lists the data's files: it can grow).
HEADER_LIMIT = 64 << 20
MARKER_LIMIT = 4096
#: Files up to this size are hashed whole; larger ones (the ids) in slices.
_WHOLE = 16 << 20
_SAMPLES = 16
_SAMPLE_BYTES = 1 << 16


def default_root() -> Path:
    """Where stores go by default: ``tokens/`` in the cache folder (:mod:`codex_ml.cache`)."""
    return Path(cache_folder()) / "tokens"


def in_default_root(folder: Path) -> bool:
    """Whether ``folder`` is a store under the cache's ``tokens/``: codex-ml's by construction."""
    root = default_root()
    if os.path.abspath(folder.parent) == os.path.abspath(root):
        return True
    try:
        return os.path.samefile(folder.parent, root)  # the same folder by another path
    except OSError:
        return False


def dtype_for(vocab_size: int) -> str:
    """``uint16`` when every id fits in it, else ``uint32``."""
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


def marker_text(**facts: Any) -> str:
    """The content of :data:`MARKER`: what the folder is, and ``facts`` (a volatile owner)."""
    return json.dumps({"what": MARKER_WHAT, "format": FORMAT, **facts}) + "\n"


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The facts in ``folder``'s mark, or None when it has none (or one codex-ml did not write)."""
    try:
        facts = json.loads(read_regular_text(folder / MARKER, limit=MARKER_LIMIT))
    except (OSError, ValueError):
        return None
    return facts if isinstance(facts, dict) and facts.get("what") == MARKER_WHAT else None


def checksum(
    handle: IO[bytes], size: int, *, vocab_size: int | None = None, dtype: str = ""
) -> str:
    """A hash of ``size`` and of the file's bytes: all of them up to 16 MiB, else 16 slices.

    The slices (64 KiB, spread over the file) keep a warm start fast on any
    corpus while still catching a truncated, zeroed or overwritten file. With
    ``vocab_size``, the bytes read are ``dtype`` ids and each must be below it:
    a header that lies about its dtype is caught on the ids themselves.
    """
    import numpy as np

    h = hashlib.sha256(str(size).encode())
    if size <= _WHOLE:
        spans = [(0, size)]
    else:
        step = size // _SAMPLES // 4 * 4  # slices start on an id whatever its size
        spans = [(start, _SAMPLE_BYTES) for start in range(0, size, step)]
    for start, length in spans:
        handle.seek(start)
        chunk = handle.read(length)
        h.update(chunk)
        if vocab_size is not None and chunk:
            size = _ITEM_SIZES[dtype]
            ids = np.frombuffer(chunk[: len(chunk) // size * size], dtype)
            if len(ids) and int(ids.max()) >= vocab_size:
                raise ValueError(_out_of_range(int(ids.max()), vocab_size, dtype))
    return h.hexdigest()[:32]


def _out_of_range(value: int, limit: int, dtype: str) -> str:
    if dtype == MASK_DTYPE:
        return f"it holds the flag byte {value}; a mask holds flags below {limit}"
    return (
        f"it holds id {value}, outside the vocabulary of {limit} its header claims (dtype {dtype})"
    )


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
        """UTF-8 bytes of the split's text records.

        None for a store written before they were counted, and for a masked store:
        the bytes its loss predicts are not the bytes of its records.
        """
        counted = self.header["splits"][split].get("bytes")
        return None if counted is None else int(counted)

    @property
    def masked(self) -> bool:
        """Whether the store holds instruction data: ids with a loss mask (and boundaries)."""
        return MASK_FILES[0] in self.header["files"]

    def loss_tokens(self, split: str) -> int:
        """The split's tokens that carry the loss: all of them, unless the store is masked."""
        counts = self.header["splits"][split]
        return int(counts.get("loss_tokens", counts["tokens"]))

    def size_bytes(self) -> int:
        names = [f"{split}.bin" for split in SPLITS] + (list(MASK_FILES) if self.masked else [])
        return sum(int(self.header["files"][name]["bytes"]) for name in names)

    def ids(self, split: str) -> Any:
        """The split's ids as a read-only ``numpy.memmap`` (an empty array when it has none)."""
        import numpy as np

        if self.tokens(split) == 0:
            return np.empty(0, dtype=self.dtype)
        name = f"{split}.bin"
        with open_regular(self.path / name, limit=int(self.header["files"][name]["bytes"])) as f:
            return np.memmap(f, dtype=self.dtype, mode="r")

    def flags(self, split: str) -> Any:
        """The split's flags (:data:`LOSS`, :data:`START`) as a read-only memmap; None unmasked."""
        import numpy as np

        if not self.masked:
            return None
        if self.tokens(split) == 0:
            return np.empty(0, dtype=MASK_DTYPE)
        name = f"{split}.mask"
        with open_regular(self.path / name, limit=int(self.header["files"][name]["bytes"])) as f:
            return np.memmap(f, dtype=MASK_DTYPE, mode="r")

    def eval_texts(self) -> list[str]:
        """The held-out records kept as text (the first ones, up to the store's limit)."""
        path = self.path / EVAL_TEXTS
        try:
            text = read_regular_text(path, limit=int(self.header["files"][EVAL_TEXTS]["bytes"]))
            texts = [json.loads(line) for line in text.splitlines()]
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"token store file {path} cannot be read ({exc}): it changed after the store "
                "was checked. Run again: the store is checked and rebuilt."
            ) from None
        if not all(isinstance(t, str) for t in texts):
            raise ValueError(f"token store file {path} holds something other than texts.")
        return texts


def read_header(folder: Path) -> dict[str, Any]:
    """The header of ``folder``; a ValueError saying why it cannot be used."""
    if read_marker(folder) is None:
        raise ValueError(f"it has no {MARKER} (not a store, or one never finished)")
    try:
        header = json.loads(read_regular_text(folder / HEADER, limit=HEADER_LIMIT))
    except FileNotFoundError:
        raise ValueError("it has no header.json (not a store, or one never finished)") from None
    except (OSError, ValueError) as exc:
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
        vocab_size, dtype = _id_type(header)
        masked = MASK_FILES[0] in header["files"]
        for split in SPLITS:
            tokens = int(header["splits"][split]["tokens"])
            sizes = {f"{split}.bin": tokens * ID_DTYPES[dtype]}
            if masked:
                sizes[f"{split}.mask"] = tokens
            for name, expected in sizes.items():
                if int(header["files"][name]["bytes"]) != expected:
                    raise ValueError(f"its header.json gives {name} a size its counts do not")
        for name in (*CHECKED_FILES, *(MASK_FILES if masked else ())):
            _check_file(folder / name, header["files"][name], _values_of(name, vocab_size, dtype))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"its header.json lacks {exc}") from None
    return TokenStore(folder, header)


def _values_of(name: str, vocab_size: int, dtype: str) -> dict[str, Any]:
    """What the values of file ``name`` must be below, and their dtype (none for texts)."""
    if name.endswith(".bin"):
        return {"vocab_size": vocab_size, "dtype": dtype}
    if name.endswith(".mask"):
        return {"vocab_size": FLAG_LIMIT, "dtype": MASK_DTYPE}
    return {}


def _id_type(header: dict[str, Any]) -> tuple[int, str]:
    """The header's vocabulary size and dtype, which must be an id dtype that fits it."""
    vocab_size, dtype = header["vocab_size"], header["dtype"]
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 1:
        raise ValueError(f"its header.json gives vocab_size {vocab_size!r}")
    if dtype not in ID_DTYPES or ID_DTYPES[dtype] < ID_DTYPES[dtype_for(vocab_size)]:
        raise ValueError(
            f"its header.json gives dtype {dtype!r}; ids of a vocabulary of {vocab_size} are "
            f"kept as {dtype_for(vocab_size)}"
        )
    return vocab_size, dtype


def _check_file(path: Path, recorded: dict[str, Any], ids: dict[str, Any]) -> None:
    """``path`` is a regular file of the recorded size and checksum (and ids in range)."""
    try:
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size != recorded["bytes"]:
                raise ValueError(
                    f"{path.name} has {size:,} bytes, the header says {recorded['bytes']:,}"
                )
            try:
                found = checksum(handle, size, **ids)
            except ValueError as exc:
                raise ValueError(f"{path.name}: {exc}") from None
    except FileNotFoundError:
        raise ValueError(f"{path.name} is missing") from None
    except OSError as exc:  # a pipe, a device, a link, too large, unreadable
        raise ValueError(f"{path.name} cannot be read ({exc})") from None
    if found != recorded["checksum"]:
        raise ValueError(f"{path.name} does not match its checksum (damaged)")


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

    def token_flags(self) -> Any:
        """The split's flags (a loss mask and example starts); None for plain text."""
        return self.store.flags(self.split)

    def __repr__(self) -> str:
        return f"<{self.split} split of token store {self.store.path}>"
