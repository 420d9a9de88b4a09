"""What the built-in data loaders return: a lazy, re-iterable stream of text records.

Each iteration opens the files again and reads them front to back, so the
token store can read a corpus once to build it, a caller can count or split
it without a copy, and nothing ever holds every record at once. ``files``
are the resolved inputs, which the token store fingerprints; ``skipped``
counts the files passed over, by reason, so that none is passed over silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from codex_ml.data.sources import FileSet, add_counts


class SkipFile(Exception):
    """A loader passes over a whole file it cannot read as its kind: counted, not an error.

    Raised by a per-file reader (``texts_of`` of :func:`stream_records`)
    before it yields anything from the file; ``reason`` is a key of
    :data:`codex_ml.data.sources.SKIP_REASONS`.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Records:
    """Text records read afresh from ``files`` by ``read()`` on every iteration."""

    __slots__ = ("_read", "_reading", "_resolved", "files", "loader")

    files: tuple[Path, ...]
    loader: str  # the data loader's key, for messages

    def __init__(
        self,
        read: Callable[[], Iterator[str]],
        *,
        files: Sequence[Path],
        loader: str,
        reading: Mapping[str, int] | None = None,
    ) -> None:
        self._read = read
        self.files = tuple(files)
        self.loader = loader
        self._resolved = dict(files.skipped) if isinstance(files, FileSet) else {}
        self._reading = reading if reading is not None else {}

    def __iter__(self) -> Iterator[str]:
        return self._read()

    @property
    def skipped(self) -> dict[str, int]:
        """Files passed over, by reason: when ``path`` was resolved, and while last read.

        The second part (files a loader could not read, :class:`SkipFile`) is
        complete once an iteration has ended, and counts that iteration only.
        """
        return add_counts(self._resolved, self._reading)

    def __repr__(self) -> str:
        first = self.files[0] if self.files else "?"
        more = f" and {len(self.files) - 1} more" if len(self.files) > 1 else ""
        return f"<{self.loader} records from {first}{more}>"


def no_records_error(files: Sequence[Path], loader: str, why: str = "") -> ValueError:
    """The error for a source that yielded nothing: a run needs at least one record."""
    where = str(files[0]) if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"
    return ValueError(
        f"{where} yields no records{why} (data loader {loader!r}); a run needs at least one. "
        "Pass a file with text in it."
    )


def check_max_records(value: object) -> int | None:
    """``max_records`` as a positive int or None, or a ValueError that says so."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"max_records must be a positive int or None, got {value!r}.")
    return value


def stream_records(
    files: Sequence[Path],
    texts_of: Callable[[Path], Iterable[str]],
    *,
    loader: str,
    skip_blank: bool = True,
    max_records: int | None = None,
    empty: Callable[[], str] = lambda: "",
) -> Records:
    """:class:`Records` of ``texts_of(file)`` for each file in order (see :func:`limited`).

    A file whose ``texts_of`` raises :class:`SkipFile` is counted in the
    records' ``skipped`` under its reason, and the next file is read.
    """
    reading: dict[str, int] = {}

    def texts() -> Iterator[str]:
        reading.clear()  # each pass counts afresh
        for file in files:
            try:
                yield from texts_of(file)
            except SkipFile as skip:
                reading[skip.reason] = reading.get(skip.reason, 0) + 1

    return limited(
        texts,
        files=files,
        loader=loader,
        skip_blank=skip_blank,
        max_records=max_records,
        empty=empty,
        reading=reading,
    )


def limited(
    texts: Callable[[], Iterable[str]],
    *,
    files: Sequence[Path],
    loader: str,
    skip_blank: bool = True,
    max_records: int | None = None,
    empty: Callable[[], str] = lambda: "",
    reading: Mapping[str, int] | None = None,
) -> Records:
    """:class:`Records` of ``texts()``, with what every loader shares applied.

    Blank texts skipped (``skip_blank``), a stop after ``max_records``, and
    :func:`no_records_error` (with ``empty()`` saying why) when nothing at all
    was read. ``reading`` is what ``texts()`` counts of the files it skips.
    """
    check_max_records(max_records)

    def read() -> Iterator[str]:
        count = 0
        for text in texts():
            if skip_blank and isinstance(text, str) and not text.strip():
                continue
            yield text
            count += 1
            if max_records is not None and count >= max_records:
                return
        if not count:
            raise no_records_error(files, loader, empty())

    return Records(read, files=files, loader=loader, reading=reading)
