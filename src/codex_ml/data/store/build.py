"""Write a token store: tokenise records in batches into a temporary folder, then rename it.

Nothing is ever written at the store's own name until the store is complete:
ids, held-out texts and the header go to ``.<name>.building-<random>/`` beside
it, which is renamed into place as a whole (:func:`codex_ml.publish.publish_folder`).
A failure of any kind (a bad record, a full disk, Ctrl-C) removes the
temporary folder, so a half-written store can never be used; a stale or
damaged store at the name is replaced only by a complete new one, and a
complete one another process published there first is kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from codex_ml import fsio, publish
from codex_ml.data.store.encode import batch_encoder
from codex_ml.data.store.fingerprint import FORMAT
from codex_ml.data.store.layout import (
    EVAL_TEXTS,
    HEADER,
    SPLITS,
    TokenStore,
    check_store,
    dtype_for,
    sampled_checksum,
)

#: Characters of text tokenised per batch (per split): large enough for Rust parallelism.
BATCH_CHARS = 4 << 20
#: Held-out records kept as text for text metrics: at most this many characters ...
EVAL_TEXT_CHARS = 1 << 20
#: ... and at most this many records.
EVAL_TEXT_RECORDS = 10_000
_STORE_FILES = {HEADER, EVAL_TEXTS, *(f"{s}.bin" for s in SPLITS)}
_STALE_TEMP_SECONDS = 24 * 3600


class StoreWriteError(OSError):
    """The disk filled up (or refused a write) while a token store was being written."""

    def __init__(self, folder: Path, exc: OSError) -> None:
        self.folder = folder
        kept = "Nothing half-written was kept"
        if folder.is_dir():
            kept += f"; the store that was at {folder} before is intact"
        super().__init__(
            exc.errno,
            publish.write_failed_message(
                f"could not write the token store {folder}",
                exc,
                disk=folder.parent,
                kept=f"{kept}.",
                remedy=f"Free space on that disk (df -h {folder.parent}) or put the store "
                "elsewhere with data.store=DIR (or CODEX_ML_CACHE_DIR), then run again.",
            ),
        )

    def __str__(self) -> str:
        return str(self.args[1])


def open_or_build(
    folder: Path,
    fingerprint: str,
    records: Callable[[], Iterable[tuple[bool, str]]],
    tokenizer: Any,
    meta: dict[str, Any],
    *,
    progress: bool = True,
    note: Callable[[str], None] = print,
) -> tuple[TokenStore, bool]:
    """The store at ``folder`` for ``fingerprint``: opened if usable, else built; and whether built.

    ``records()`` gives ``(held_out, text)`` pairs; ``meta`` goes into the header.
    """
    fsio.refuse_link(folder)
    if folder.exists():
        try:
            return check_store(folder, fingerprint), False
        except ValueError as why:
            _refuse_foreign(folder)
            note(f"token store {folder} cannot be used: {why}; building it again.")
    store = build_store(folder, fingerprint, records(), tokenizer, meta, progress=progress)
    return store, True


def _refuse_foreign(folder: Path) -> None:
    """A folder that holds anything but store files is the user's: never replace it."""
    if not folder.is_dir():
        raise NotADirectoryError(
            f"data.store={folder} is not a folder; name a folder for the token store (it is "
            "made if missing)."
        )
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in _STORE_FILES)
    if foreign:
        raise FileExistsError(
            f"data.store={folder} holds files that are not a token store's "
            f"({', '.join(foreign[:5])}); codex-ml will not replace them and changed nothing. "
            "Name an empty or new folder for data.store=."
        )


def build_store(
    folder: Path,
    fingerprint: str,
    records: Iterable[tuple[bool, str]],
    tokenizer: Any,
    meta: dict[str, Any],
    *,
    progress: bool = True,
) -> TokenStore:
    """Tokenise ``records`` into a new store and publish it at ``folder``."""
    started = time.perf_counter()
    _remove_stale_temps(folder)

    def fill(temp: Path) -> None:
        _write_store(temp, folder, fingerprint, records, tokenizer, meta, progress, started)

    def usable(existing: Path) -> bool:
        """Another process finished the same store first: use theirs (never a link)."""
        fsio.refuse_link(existing)
        try:
            check_store(existing, fingerprint)
        except ValueError:
            return False
        return True

    try:
        publish.publish_folder(
            folder,
            fill,
            staging_prefix=_staging_prefix(folder),
            aside_prefix=f".{folder.name}.old-",
            keep_existing=usable,
            durable=False,  # a cache: a store lost to a power cut is rebuilt
        )
    except OSError as exc:
        if publish.is_disk_full(exc):
            raise StoreWriteError(folder, exc) from exc
        raise
    return check_store(folder, fingerprint)


def _write_store(
    temp: Path,
    folder: Path,
    fingerprint: str,
    records: Iterable[tuple[bool, str]],
    tokenizer: Any,
    meta: dict[str, Any],
    progress: bool,
    started: float,
) -> None:
    """The store's files in ``temp``: the splits' ids, the held-out texts, the header last."""
    dtype = dtype_for(int(tokenizer.vocab_size))
    method, encode = batch_encoder(tokenizer)
    with _Progress(progress, folder) as bar:
        counts = _write_splits(temp, records, encode, dtype, bar)
    header = {
        **meta,
        "format": FORMAT,
        "fingerprint": fingerprint,
        "dtype": dtype,
        "vocab_size": int(tokenizer.vocab_size),
        "eos_id": int(tokenizer.eos_id),
        "encoder": method,
        "splits": counts,
        "checksums": {s: sampled_checksum(temp / f"{s}.bin") for s in SPLITS},
        "seconds": round(time.perf_counter() - started, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    fsio.write_atomic(temp / HEADER, json.dumps(header, indent=2) + "\n")
    os.chmod(temp, 0o777 & ~_umask())  # the temporary folder was private (0700)


def _write_splits(
    temp: Path, records: Iterable[tuple[bool, str]], encode: Any, dtype: str, bar: _Progress
) -> dict[str, dict[str, int]]:
    with (
        open(temp / "train.bin", "xb") as train,
        open(temp / "eval.bin", "xb") as held_out,
        open(temp / EVAL_TEXTS, "x", encoding="utf-8") as texts,
        _Pipeline() as pipeline,
    ):
        writers = (
            _SplitWriter(train, encode, dtype, bar, pipeline),
            _SplitWriter(held_out, encode, dtype, bar, pipeline),
        )
        kept_chars = kept = 0
        for index, (is_eval, text) in enumerate(records):
            if not isinstance(text, str):
                raise TypeError(
                    f"record {index} from the data loader is a {type(text).__name__}, not a "
                    "str; a data loader yields text records."
                )
            writers[is_eval].add(text)
            if is_eval and kept < EVAL_TEXT_RECORDS and kept_chars + len(text) <= EVAL_TEXT_CHARS:
                texts.write(json.dumps(text, ensure_ascii=False) + "\n")
                kept_chars += len(text)
                kept += 1
        for writer in writers:
            writer.flush()
        pipeline.drain()
        return {
            split: {"tokens": writer.tokens, "records": writer.records, "bytes": writer.bytes}
            for split, writer in zip(("train", "eval"), writers, strict=True)
        }


class _Pipeline:
    """One worker thread that tokenises and writes batches while the caller reads on.

    Reading and splitting records is Python work; tokenising (Rust, numpy) and
    writing release the GIL, so the two overlap. One worker keeps each file's
    batches in order; at most :data:`_IN_FLIGHT` batches wait, which bounds memory.
    An error in the worker is raised in the caller at its next batch.
    """

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="codex-ml-store")
        self.futures: deque[Any] = deque()

    def submit(self, job: Callable[[], None]) -> None:
        while len(self.futures) >= _IN_FLIGHT:
            self.futures.popleft().result()
        self.futures.append(self.executor.submit(job))

    def drain(self) -> None:
        while self.futures:
            self.futures.popleft().result()

    def __enter__(self) -> _Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        # Wait for the batch being written: the caller removes the folder after a failure.
        for future in self.futures:
            future.cancel()
        self.executor.shutdown(wait=True)


_IN_FLIGHT = 2


class _SplitWriter:
    """Collects one split's records into batches and appends their ids to its file."""

    def __init__(
        self, handle: IO[bytes], encode: Any, dtype: str, bar: _Progress, pipeline: _Pipeline
    ) -> None:
        self.handle = handle
        self.encode = encode
        self.dtype = dtype
        self.bar = bar
        self.pipeline = pipeline
        self.limit = (1 << 16) if dtype == "uint16" else (1 << 32)
        self.pending: list[str] = []
        self.pending_chars = 0
        self.tokens = 0
        self.records = 0
        self.bytes = 0  # UTF-8 bytes of the records: what bits per byte divides by

    def add(self, text: str) -> None:
        self.pending.append(text)
        self.pending_chars += len(text)
        if self.pending_chars >= BATCH_CHARS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        batch, chars = self.pending, self.pending_chars
        self.pending = []
        self.pending_chars = 0
        self.pipeline.submit(lambda: self._write(batch, chars))

    def _write(self, batch: list[str], chars: int) -> None:
        ids = self.encode(batch)
        if len(ids) and (int(ids.max()) >= self.limit or int(ids.min()) < 0):
            raise ValueError(
                f"the tokenizer gave id {int(ids.max())}, outside its vocabulary "
                f"(vocab_size fits {self.dtype}); check the tokenizer's vocab_size."
            )
        self.handle.write(ids.astype(self.dtype, copy=False).tobytes())
        self.tokens += len(ids)
        self.records += sum(1 for t in batch if t)
        self.bytes += len("".join(batch).encode("utf-8", "surrogatepass"))
        self.bar.update(chars + len(batch), len(ids))


class _Progress:
    """A progress bar on stderr: text read (MB/s) and tokens written."""

    def __init__(self, enabled: bool, folder: Path) -> None:
        self.enabled = enabled
        self.folder = folder
        self.tokens = 0
        self.bar: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                desc="tokenising",
                unit="B",
                unit_scale=True,
                unit_divisor=1000,
                mininterval=0.5,
                leave=False,
            )
        return self

    def update(self, chars: int, tokens: int) -> None:
        self.tokens += tokens
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.tokens:,} tokens", refresh=False)
            self.bar.update(chars)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _staging_prefix(folder: Path) -> str:
    return f".{folder.name}.building-"


def _remove_stale_temps(folder: Path) -> None:
    """Temporary folders a killed build left behind (a day old: no build is that slow)."""
    if not folder.parent.is_dir():
        return
    cutoff = time.time() - _STALE_TEMP_SECONDS
    for temp in folder.parent.glob(f"{_staging_prefix(folder)}*"):
        with contextlib.suppress(OSError):
            if temp.is_dir() and not temp.is_symlink() and temp.stat().st_mtime < cutoff:
                shutil.rmtree(temp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
