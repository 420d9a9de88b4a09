"""Text records from plain-text files: one record per line.

``load_lines`` streams the file line by line in binary and decodes each line
on its own, so a decoding error names its line, and a huge single line is
read once without any quadratic work. Line endings (``\\n`` or ``\\r\\n``) are
removed; everything else in a line is kept as written.
"""

from __future__ import annotations

import codecs
import random
from os import PathLike
from pathlib import Path

from codex_ml import resources

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
) -> list[str]:
    """Text records from any plain-text file, one per line, optionally shuffled with a seed."""
    if not isinstance(path, (str, PathLike)):
        raise TypeError(
            f"load_lines needs path= a plain-text file (str or Path), got {type(path).__name__}."
        )
    if max_records is not None and (
        isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 1
    ):
        raise ValueError(f"max_records must be a positive int or None, got {max_records!r}.")
    path = Path(path)
    decoder = _line_decoder(path, encoding)
    records: list[str] = []
    try:
        with path.open("rb") as handle:
            for line_number, raw in enumerate(handle, start=1):
                try:
                    line = decoder.decode(raw, final=True)
                except UnicodeDecodeError as exc:
                    reason = f"{exc.reason} at byte {exc.start} of the line"
                    raise LineDecodeError(path, line_number, encoding, reason) from exc
                line = line.rstrip("\r\n")
                if line_number == 1:
                    line = line.removeprefix("\ufeff")  # a byte-order mark is never text
                if skip_blank and not line.strip():
                    continue
                records.append(line)
                if max_records is not None and len(records) >= max_records:
                    break
    except FileNotFoundError:
        raise FileNotFoundError(
            f"text file not found: {path}. Pass path= an existing plain-text file with one "
            "record per line."
        ) from None
    except IsADirectoryError:
        raise IsADirectoryError(
            f"{path} is a directory; pass path= a plain-text file inside it, one record per line."
        ) from None
    if not records:
        what = "only blank lines" if path.stat().st_size else "nothing (the file is empty)"
        raise ValueError(
            f"{path} holds {what}, so it yields no records; a run needs at least one. Pass a "
            "file with text in it" + (" or skip_blank=False." if skip_blank else ".")
        )
    if shuffle:
        random.Random(seed).shuffle(records)
    return records


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
    # One decoder for the whole file, so "utf-8-sig" drops the BOM of the first line only.
    return info.incrementaldecoder()


def load_tiny_corpus(
    *, path: str | PathLike[str] | None = None, shuffle: bool = False, seed: int = 0
) -> list[str]:
    """The shipped tiny English corpus (data/offline/tiny_corpus.txt), one paragraph per record."""
    if path is None:
        path = resources.offline_data_dir() / TINY_CORPUS_FILENAME
    return load_lines(path, shuffle=shuffle, seed=seed)
