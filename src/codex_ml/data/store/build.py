"""Write a token store: tokenise records in batches into a temporary folder, then rename it.

Nothing is ever written at the store's own name until the store is complete:
its mark, ids, held-out texts and the header go to
``.<name>.building-<pid>@<host>-<random>/`` beside it, which is renamed into
place as a whole (:func:`codex_ml.publish.publish_folder`). A failure of any
kind (a bad record, a full disk, Ctrl-C, SIGTERM) removes the temporary
folder, so a half-written store can never be used; what a killed build left is
cleared by the next (:mod:`.leftovers`). A stale or damaged store at the name
is replaced only by a complete new one, only if codex-ml made that folder
(:func:`refuse_foreign`), and a complete one another process published there
first is kept.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from codex_ml import fsio, publish
from codex_ml.cache import CACHE_DIR_VARIABLE
from codex_ml.data.chat import record_text
from codex_ml.data.examples import Chat, PromptCompletion, Record, record_texts
from codex_ml.data.store import leftovers
from codex_ml.data.store.encode import batch_encoder
from codex_ml.data.store.examples import example_encoder
from codex_ml.data.store.fingerprint import FORMAT, is_unstable
from codex_ml.data.store.layout import (
    CHECKED_FILES,
    EVAL_TEXTS,
    HEADER,
    LOSS,
    MARKER,
    MASK_FILES,
    SPLITS,
    STORE_FILES,
    TokenStore,
    check_store,
    checksum,
    dtype_for,
    in_default_root,
    marker_text,
    read_marker,
)
from codex_ml.regularfile import open_regular

#: Characters of text tokenised per batch (per split): large enough for Rust parallelism.
BATCH_CHARS = 4 << 20
#: What a folder that may not be written makes ``mkdir`` fail with.
_REFUSED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
#: Held-out records kept as text for text metrics: at most this many characters ...
EVAL_TEXT_CHARS = 1 << 20
#: ... and at most this many records.
EVAL_TEXT_RECORDS = 10_000


class StoreFolderTaken(FileExistsError, PermissionError):
    """``data.store=`` names a folder codex-ml did not make, and it is not empty: never touched.

    A ``PermissionError`` too, so the command line reports it as one paragraph
    (exit 2) like any other file the user has to move; ``folder`` is the folder.
    """

    def __init__(self, folder: Path, foreign: list[str]) -> None:
        self.folder = folder
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        super().__init__(
            f"data.store={folder} holds files that are not a token store's ({shown}): codex-ml "
            f"marks every store it makes with a {MARKER} file, and this folder has none or holds "
            "more, so codex-ml will not replace or delete anything in it and changed nothing. "
            "Name an empty or new folder for data.store= (it is made if missing)."
        )


class StoreFolderUnwritable(PermissionError):
    """The folder a token store goes in cannot be written (permissions, a read-only disk)."""

    def __init__(self, folder: Path, exc: OSError) -> None:
        self.folder = folder
        where = Path(exc.filename) if exc.filename else folder.parent
        if where.parent == folder.parent and where.name.startswith(f".{folder.name}."):
            where = folder.parent  # the temporary folder it was making there
        if in_default_root(folder):
            remedy = (
                f"Make it writable, or set {CACHE_DIR_VARIABLE} to a folder you can write (the "
                "token stores go in its tokens/), or name one with data.store=DIR."
            )
        else:
            remedy = "Make it writable, or name a folder you can write with data.store=DIR."
        super().__init__(
            exc.errno,
            f"could not write the token store {folder}: {where} is not writable "
            f"({os.strerror(exc.errno or errno.EACCES)}). Nothing was written. {remedy}",
        )

    def __str__(self) -> str:
        return str(self.args[1])


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

    ``records()`` gives ``(held_out, text)`` pairs; ``meta`` goes into the header once
    they are all read, so the caller may add what reading them told (the files skipped).
    """
    fsio.refuse_link(folder)
    if folder.exists():
        try:
            return check_store(folder, fingerprint), False
        except ValueError as why:
            if refuse_foreign(folder):
                note(f"token store {folder} cannot be used: {why}; building it again.")
    volatile = is_unstable(meta) and in_default_root(folder)
    store = build_store(
        folder, fingerprint, records(), tokenizer, meta, progress=progress, volatile=volatile
    )
    if volatile:  # said once it is built: an error stays the one paragraph it is
        note(
            f"the data comes from a pipe or a device, whose content has no fingerprint: its "
            f"token store {folder} was built afresh and is removed when this process ends."
        )
    return store, True


def refuse_foreign(folder: Path) -> bool:
    """Raise unless codex-ml may replace what is at ``folder``; whether anything is there.

    It may when ``folder`` is a store under the cache's ``tokens/`` (codex-ml's
    by construction), is empty, or bears the store's mark and holds only a
    store's files. Anything else is the user's (:class:`StoreFolderTaken`).
    """
    if not folder.is_dir() or folder.is_symlink():
        raise NotADirectoryError(
            f"data.store={folder} is not a folder; name a folder for the token store (it is "
            "made if missing)."
        )
    names = sorted(p.name for p in folder.iterdir())
    if not names or in_default_root(folder):
        return bool(names)
    foreign = [name for name in names if name not in STORE_FILES]
    if read_marker(folder) is None or foreign:
        raise StoreFolderTaken(folder, foreign or names)
    return True


def build_store(
    folder: Path,
    fingerprint: str,
    records: Iterable[tuple[bool, str]],
    tokenizer: Any,
    meta: dict[str, Any],
    *,
    progress: bool = True,
    volatile: bool = False,
) -> TokenStore:
    """Tokenise ``records`` into a new store and publish it at ``folder``.

    A ``volatile`` store (from a source without a fingerprint) is removed when
    this process exits, and by the next build should this process be killed.
    """
    started = time.perf_counter()
    leftovers.remove_leftovers(folder)
    mark = marker_text(volatile=leftovers.owner()) if volatile else marker_text()

    def fill(temp: Path) -> None:
        (temp / MARKER).write_text(mark, encoding="utf-8")  # temp is fresh and private
        _write_store(temp, folder, fingerprint, records, tokenizer, meta, progress, started)

    def usable(existing: Path) -> bool:
        """Another process finished the same store first: use theirs (never a link).

        Whatever else is there is replaced only if it is codex-ml's to replace.
        """
        fsio.refuse_link(existing)
        try:
            check_store(existing, fingerprint)
        except ValueError:
            refuse_foreign(existing)
            return False
        return True

    try:
        with _stopped_by_sigterm(folder):
            publish.publish_folder(
                folder,
                fill,
                staging_prefix=leftovers.staging_prefix(folder),
                aside_prefix=leftovers.aside_prefix(folder),
                keep_existing=usable,
                durable=False,  # a cache: a store lost to a power cut is rebuilt
            )
    except OSError as exc:
        if publish.is_disk_full(exc):
            raise StoreWriteError(folder, exc) from exc
        if exc.errno in _REFUSED and not isinstance(exc, StoreFolderTaken):
            raise StoreFolderUnwritable(folder, exc) from exc
        raise
    if volatile:
        leftovers.remove_at_exit(folder)
    return check_store(folder, fingerprint)


def _write_store(
    temp: Path,
    folder: Path,
    fingerprint: str,
    records: Iterable[tuple[bool, Record]],
    tokenizer: Any,
    meta: dict[str, Any],
    progress: bool,
    started: float,
) -> None:
    """The store's files in ``temp``: the splits' ids (and masks), the held-out texts, the header.

    Instruction examples (not text) are seen at the first record: their ids get
    a mask beside them (:mod:`.examples`); plain text gets exactly the files it
    always had.
    """
    records, examples = _kind_of(records)
    if examples:
        method, encode = example_encoder(tokenizer)
    else:
        method, encode = batch_encoder(tokenizer)  # refuses a vocab_size or eos_id that is no id
    dtype = dtype_for(int(tokenizer.vocab_size))
    with _Progress(progress, folder) as bar:
        counts = _write_splits(temp, records, encode, dtype, bar, examples=examples)
    files = (*CHECKED_FILES, *(MASK_FILES if examples else ()))
    header = {
        **meta,
        "format": FORMAT,
        "fingerprint": fingerprint,
        "dtype": dtype,
        "vocab_size": int(tokenizer.vocab_size),
        "eos_id": int(tokenizer.eos_id),
        "encoder": method,
        "splits": counts,
        "files": {name: _recorded(temp / name) for name in files},
        "seconds": round(time.perf_counter() - started, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    fsio.write_atomic(temp / HEADER, json.dumps(header, indent=2) + "\n")
    os.chmod(temp, 0o777 & ~_umask())  # the temporary folder was private (0700)


def _kind_of(
    records: Iterable[tuple[bool, Record]],
) -> tuple[Iterable[tuple[bool, Record]], bool]:
    """The records again (the first one read ahead), and whether they are examples."""
    stream = iter(records)
    first = next(stream, None)
    if first is None:
        return (), False
    return itertools.chain([first], stream), not isinstance(first[1], str)


def _recorded(path: Path) -> dict[str, Any]:
    """What the header records of a file: its size and checksum (see ``layout.checksum``)."""
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        return {"bytes": size, "checksum": checksum(handle, size)}


def _write_splits(
    temp: Path,
    records: Iterable[tuple[bool, Record]],
    encode: Any,
    dtype: str,
    bar: _Progress,
    *,
    examples: bool,
) -> dict[str, dict[str, int]]:
    with contextlib.ExitStack() as files:
        ids = [files.enter_context(open(temp / f"{split}.bin", "xb")) for split in SPLITS]
        masks = [files.enter_context(open(temp / name, "xb")) for name in MASK_FILES]
        texts = files.enter_context(open(temp / EVAL_TEXTS, "x", encoding="utf-8"))
        pipeline = files.enter_context(_Pipeline())
        writers = tuple(
            _SplitWriter(ids[i], masks[i] if examples else None, encode, dtype, bar, pipeline)
            for i in range(len(SPLITS))
        )
        kept_chars = kept = 0
        for index, (is_eval, record) in enumerate(records):
            _check_record(index, record, examples)
            writers[is_eval].add(record)
            text = record_text(record)
            if is_eval and kept < EVAL_TEXT_RECORDS and kept_chars + len(text) <= EVAL_TEXT_CHARS:
                texts.write(json.dumps(text, ensure_ascii=False) + "\n")
                kept_chars += len(text)
                kept += 1
        for writer in writers:
            writer.flush()
        pipeline.drain()
    if not examples:
        for name in MASK_FILES:
            (temp / name).unlink()  # a store of text is what it always was
    return {split: writer.counts() for split, writer in zip(SPLITS, writers, strict=True)}


def _check_record(index: int, record: Any, examples: bool) -> None:
    """A record is text, or (in a store of examples) an instruction example: never a mix."""
    if isinstance(record, str) and not examples:
        return
    if isinstance(record, PromptCompletion | Chat) and examples:
        return
    if isinstance(record, str | PromptCompletion | Chat):
        kind = "text" if isinstance(record, str) else "an instruction example"
        first = "instruction examples" if examples else "text"
        raise TypeError(
            f"record {index} from the data loader is {kind}, but the records before it were "
            f"{first}; a data loader yields one or the other."
        )
    raise TypeError(
        f"record {index} from the data loader is a {type(record).__name__}, not a str; a data "
        "loader yields text records (or instruction examples: codex_ml.data.examples)."
    )


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
    """Collects one split's records into batches and appends their ids (and flags) to its files."""

    def __init__(
        self,
        handle: IO[bytes],
        mask: IO[bytes] | None,
        encode: Any,
        dtype: str,
        bar: _Progress,
        pipeline: _Pipeline,
    ) -> None:
        self.handle = handle
        self.mask = mask  # None for text: no flags
        self.encode = encode
        self.dtype = dtype
        self.bar = bar
        self.pipeline = pipeline
        self.pending: list[Any] = []
        self.pending_chars = 0
        self.tokens = 0
        self.records = 0
        self.bytes = 0  # UTF-8 bytes of the text records: what bits per byte divides by
        self.loss_tokens = 0

    def add(self, record: Record) -> None:
        self.pending.append(record)
        self.pending_chars += sum(map(len, record_texts(record)))
        if self.pending_chars >= BATCH_CHARS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        batch, chars = self.pending, self.pending_chars
        self.pending = []
        self.pending_chars = 0
        self.pipeline.submit(lambda: self._write(batch, chars))

    def _write(self, batch: list[Any], chars: int) -> None:
        if self.mask is None:
            ids = self.encode(batch)  # checked: ints below the tokenizer's vocab_size
            self.records += sum(1 for t in batch if t)
            self.bytes += len("".join(batch).encode("utf-8", "surrogatepass"))
        else:
            ids, flags = self.encode(batch)
            self.mask.write(flags.tobytes())
            self.loss_tokens += int(((flags & LOSS) != 0).sum())
            self.records += len(batch)
        self.handle.write(ids.astype(self.dtype, copy=False).tobytes())
        self.tokens += len(ids)
        self.bar.update(chars + len(batch), len(ids))

    def counts(self) -> dict[str, int]:
        """The split's counts for the header.

        A store of text counts its UTF-8 bytes (what bits per byte divides by); a
        masked store counts the tokens that carry the loss instead, since the bytes
        of a prompt and its template are not what its loss predicts.
        """
        counts = {"tokens": self.tokens, "records": self.records}
        if self.mask is None:
            counts["bytes"] = self.bytes
        else:
            counts["loss_tokens"] = self.loss_tokens
        return counts


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


@contextlib.contextmanager
def _stopped_by_sigterm(folder: Path) -> Iterator[None]:
    """SIGTERM while building (``codex-ml prepare``) ends the build cleanly: exit 143.

    Left at its default, SIGTERM kills the process on the spot, leaving the
    temporary folder behind; raised as ``SystemExit`` instead, it goes through
    the build's cleanup. A handler someone else installed (``codex-ml
    train``'s) is left alone.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    class Terminated(SystemExit):
        """SIGTERM arrived (a SystemExit a plugin raised is not this)."""

    def terminate(signum: int, frame: object) -> None:
        raise Terminated(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except Terminated:
        print(
            f"codex-ml: terminated (SIGTERM) while building the token store {folder}; nothing "
            "of it was kept.",
            file=sys.stderr,
        )
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
