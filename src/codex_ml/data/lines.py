"""Text records from plain-text files: one record per line.

``load_lines`` streams its files through the shared line reader
(:mod:`codex_ml.data.reader`): lines are cut in binary and each is decoded on
its own, so a decoding error names its file and line, and no line may be
longer than ``max_record_bytes``. Line endings (``\\n`` or ``\\r\\n``) are
removed; everything else in a line is kept as written.
"""

from __future__ import annotations

import codecs
import random
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

from codex_ml import resources
from codex_ml.data.reader import DEFAULT_MAX_RECORD_BYTES, check_max_record_bytes, read_lines
from codex_ml.data.records import Records, stream_records
from codex_ml.data.sources import FileSet, resolve_files

TINY_CORPUS_FILENAME = "tiny_corpus.txt"


class LineDecodeError(ValueError):
    """A line of a text file is not valid in the encoding it is read with."""

    def __init__(self, path: Path, line_number: int, encoding: str, reason: str) -> None:
        self.path = path
        self.line_number = line_number
        self.encoding = encoding
        super().__init__(
            f"{path}, line {line_number}: not valid {encoding} ({reason}). Pass the file's real "
            f"encoding as encoding=..., or convert the file to {encoding}."
        )


def load_lines(
    path: str | PathLike[str],
    *,
    shuffle: bool = False,
    seed: int = 0,
    skip_blank: bool = True,
    encoding: str = "utf-8",
    max_records: int | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Records:
    """Text records from plain-text files (a file, a directory of shards or a glob), one per line.

    Streamed: nothing is read until the records are iterated, and each
    iteration reads the files again. ``shuffle`` is the exception: it holds
    every record in memory to shuffle them, so leave it off for large corpora
    (training draws random blocks anyway).
    """
    check_max_record_bytes(max_record_bytes)
    files = _text_files(path)
    _line_decoder(files[0], encoding)  # an unusable encoding fails now, not at the first record
    records = stream_records(
        files,
        lambda file: _file_lines(file, encoding, max_record_bytes, skip_blank),
        loader="lines",
        skip_blank=skip_blank,
        max_records=max_records,
        empty=lambda: (
            " (only blank lines)" if any(_size(f) for f in files) else " (the file is empty)"
        ),
    )
    if not shuffle:
        return records

    def shuffled() -> Iterator[str]:
        every = list(records)
        random.Random(seed).shuffle(every)
        yield from every

    return Records(shuffled, files=files, loader="lines")


def _text_files(path: str | PathLike[str]) -> FileSet:
    if isinstance(path, bool) or not isinstance(path, (str, PathLike)):
        raise TypeError(
            f"load_lines needs path= a plain-text file (str or Path), got {type(path).__name__}."
        )
    return resolve_files(path, loader="lines")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _file_lines(
    path: Path, encoding: str, max_record_bytes: int, skip_blank: bool
) -> Iterator[str]:
    _line_decoder(path, encoding)
    # Each line on its own (bytes.decode is several times faster than an incremental
    # decoder); "utf-8-sig" only differs on the first line, where the BOM goes anyway.
    codec = "utf-8" if codecs.lookup(encoding).name == "utf-8-sig" else encoding
    lines = read_lines(path, max_record_bytes=max_record_bytes, skip_blank=skip_blank)
    for number, _, raw in lines:
        try:
            line = raw.decode(codec)
        except UnicodeDecodeError as exc:
            reason = f"{exc.reason} at byte {exc.start} of the line"
            raise LineDecodeError(path, number, encoding, reason) from exc
        line = line.rstrip("\r")
        if number == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark is never text
        yield line


def _line_decoder(path: Path, encoding: str) -> codecs.IncrementalDecoder:
    # Splitting raw bytes at b"\n" is only right when "\n" is that single byte,
    # as in UTF-8, Latin-1 and the other ASCII-compatible encodings.
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"cannot read {path}: unknown encoding {encoding!r}.") from None
    encoder = info.incrementalencoder()
    encoder.encode("a")  # past any byte-order mark, which utf-8-sig writes first
    if encoder.encode("\n") != b"\n":
        raise ValueError(
            f"cannot read {path} as {encoding}: load_lines reads ASCII-compatible encodings "
            "(utf-8, latin-1, cp1252, ...); convert the file to UTF-8 first."
        )
    # One decoder per file, so "utf-8-sig" drops the BOM of the first line only.
    return info.incrementaldecoder()


def load_tiny_corpus(
    *, path: str | PathLike[str] | None = None, shuffle: bool = False, seed: int = 0
) -> list[str]:
    """The shipped tiny English corpus (data/offline/tiny_corpus.txt), one paragraph per record.

    A list, unlike :func:`load_lines`: it is 75 KB, and callers slice it.
    ``CODEX_ML_TINY_CORPUS_PATH`` (the original codex-ml's variable) replaces
    the shipped file when ``path`` is not given.
    """
    origin = "path="
    if path is None:
        path, origin = resources.offline_file(TINY_CORPUS_FILENAME, "CODEX_ML_TINY_CORPUS_PATH")
    try:
        return list(load_lines(path, shuffle=shuffle, seed=seed))
    except FileNotFoundError as exc:  # name the registry key: the user may only know that
        raise FileNotFoundError(
            f"offline:tiny-corpus: {exc} The path came from {origin}."
        ) from None
