"""Text records from a tree of files: one record per file, its whole text (a code corpus).

``path`` is a file, a directory (walked recursively) or a glob, read in sorted
path order; ``suffixes`` keeps a directory's files with those endings
(``[".py"]``), and ``exclude`` globs, relative to the directory (or the fixed
start of a glob), leave files or whole folders out (``"**/tests/**"``,
``"*.min.js"``). Each file is read on its own while the records are
iterated, so memory holds one file at a time whatever the tree.

A record is the file's text as written (UTF-8; a leading byte-order mark
dropped, line endings kept). Files that are not such text are skipped and
counted under their reason, never an error, because a large source tree
nearly always holds a few of them: ``not_utf8`` (a Latin-1 test file),
``binary`` (a NUL byte: ``.pyc``, images), ``too_large`` (over
``max_record_bytes``: a generated or minified file) and ``empty`` (blank
text, such as most ``__init__.py`` files, when ``skip_blank``). Together with
the files resolution skipped (hidden, markers, excluded, other suffixes) they
are the records' ``skipped`` counts, which ``codex-ml prepare`` and ``train``
print and the token store records.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from os import PathLike
from pathlib import Path

from codex_ml.data.reader import DEFAULT_MAX_RECORD_BYTES, check_max_record_bytes, open_binary
from codex_ml.data.records import Records, SkipFile, stream_records
from codex_ml.data.sources import check_patterns, resolve_files, skipped_phrase


def load_files(
    path: str | PathLike[str],
    *,
    suffixes: Sequence[str] | str = (),
    exclude: Sequence[str] | str = (),
    skip_blank: bool = True,
    max_records: int | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Records:
    """One record per file under ``path`` (a file, a directory or a glob): the file's whole text.

    Streamed and re-iterable like every loader's records; see the module
    docstring for what is skipped and why.
    """
    check_max_record_bytes(max_record_bytes)
    endings = tuple(_suffix(s) for s in check_patterns(suffixes, "suffixes"))
    patterns = check_patterns(exclude, "exclude")
    files = resolve_files(path, loader="files", suffixes=endings, exclude=patterns)

    def text_of(file: Path) -> Iterator[str]:
        text = _file_text(file, max_record_bytes)
        if skip_blank and not text.strip():
            raise SkipFile("empty")
        yield text

    records: Records | None = None

    def why_none() -> str:
        phrase = skipped_phrase(records.skipped) if records is not None else ""
        return f": {phrase}" if phrase else ""

    records = stream_records(
        files,
        text_of,
        loader="files",
        skip_blank=skip_blank,
        max_records=max_records,
        empty=why_none,
    )
    return records


def _suffix(text: str) -> str:
    """A suffix as compared: lower case, with its dot (``"py"`` means ``".py"``)."""
    text = text.strip().lower()
    return text if text.startswith(".") else f".{text}"


def _file_text(path: Path, max_record_bytes: int) -> str:
    """The text of ``path``, or :class:`SkipFile` saying why it is not text to train on."""
    with open_binary(path) as handle:
        raw = handle.read(max_record_bytes + 1)
    if len(raw) > max_record_bytes:
        raise SkipFile("too_large")
    if b"\0" in raw:
        raise SkipFile("binary")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SkipFile("not_utf8") from None
    return text.removeprefix("\ufeff")
