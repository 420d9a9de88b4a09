"""The one line reader every text-based loader shares: bounded, chunked, gzip-aware.

A record is one line, and no line may be longer than ``max_record_bytes``:
``/dev/zero`` or a 2 GB file without a line break is then an error naming the
file and the byte offset as soon as the cap is passed, instead of a process
that grows until it dies with ``MemoryError``. Files are read in large chunks
and split in C (``bytes.split``), which is several times faster than a Python
``for line in handle`` loop on short lines. A name ending in ``.gz`` is read
through :mod:`gzip`; offsets then count uncompressed bytes.

A reader that skips blank lines (``skip_blank=True``) passes over runs of empty
lines in C as well: a few megabytes of gzip can hold billions of them, and a
Python step per line would take hours to find nothing.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

#: The default cap on one record (one line, one field): 8 MiB.
DEFAULT_MAX_RECORD_BYTES = 8 * 1024 * 1024
_CHUNK = 1 << 20
#: A line's end with the blank lines (CRs at most) after it: splits in linear time, any bytes.
_BLANK_RUN = re.compile(rb"(\n(?:[\r\n]*\n)?)")
#: Lines shorter than this on average make a chunk "mostly blank", worth splitting by runs.
_SHORT_LINE = 4


class RecordTooLargeError(ValueError):
    """A record is longer than ``max_record_bytes`` (a huge line, or no line breaks at all)."""

    def __init__(self, path: Path, offset: int, limit: int, where: str = "") -> None:
        self.path = path
        self.offset = offset
        self.limit = limit
        where = f" ({where})" if where else ""
        super().__init__(
            f"{path}: the record that starts at byte {offset:,}{where} is longer than "
            f"max_record_bytes={limit:,}, so it was not read (a record is one line, and this "
            f"one has no line break within {limit:,} bytes). If the file really holds records "
            f"this long, raise the cap (data.max_record_bytes={limit * 4}); if it is not "
            "line-based text (a binary file, /dev/zero, a dump without line breaks), convert "
            "it to one record per line first."
        )


def check_max_record_bytes(value: object) -> int:
    """``max_record_bytes`` as a positive int, or a ValueError that says what it must be."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_record_bytes must be a positive int (bytes), got {value!r}.")
    return value


def open_binary(path: Path) -> BinaryIO:
    """``path`` opened for reading bytes, decompressed on the fly when it ends in ``.gz``."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def read_lines(
    path: Path, *, max_record_bytes: int, skip_blank: bool = False
) -> Iterator[tuple[int, int, bytes]]:
    """``(line number, byte offset, line)`` for each line of ``path``, without its ``\\n``.

    With ``skip_blank``, empty lines are not given (nor, in a run of blank lines,
    lines of only ``\\r``); numbers and offsets still count every line. Memory
    is bounded by ``max_record_bytes`` plus one chunk, whatever the file.
    """
    with open_binary(path) as handle:
        offset = 0  # where `pending` starts in the (uncompressed) file
        number = 0
        pending = b""
        while chunk := handle.read(_CHUNK):
            data = pending + chunk if pending else chunk
            newlines = data.count(b"\n") if skip_blank else 0
            if skip_blank and newlines == len(data):  # nothing but empty lines
                number, offset = number + len(data), offset + len(data)
                continue
            # Mostly blank lines: text without them, and the runs of them between, skipped whole.
            parts = _BLANK_RUN.split(data) if newlines * _SHORT_LINE > len(data) else [data]
            for index in range(0, len(parts), 2):
                lines = parts[index].split(b"\n")
                if index + 1 == len(parts):
                    pending = lines.pop()  # the chunk's unfinished last line
                for line in lines:
                    number += 1
                    if len(line) > max_record_bytes:
                        raise RecordTooLargeError(
                            path, offset, max_record_bytes, f"line {number:,}"
                        )
                    if line or not skip_blank:
                        yield number, offset, line
                    offset += len(line) + 1
                if index + 1 < len(parts):  # a run: the last line's end, then blank lines
                    run = parts[index + 1]
                    number, offset = number + run.count(b"\n") - 1, offset + len(run) - 1
            if len(pending) > max_record_bytes:
                raise RecordTooLargeError(path, offset, max_record_bytes, f"line {number + 1:,}")
        if pending:
            yield number + 1, offset, pending
