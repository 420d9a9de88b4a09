"""Text records from CSV (or TSV) files with a header row: the ``text_field`` column.

Rows are parsed by :mod:`csv` from the shared bounded line reader, so a quoted
field may span lines, but no line, and no field, may pass ``max_record_bytes``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

from codex_ml.data.examples import Record, RecordShape
from codex_ml.data.fields import field_records
from codex_ml.data.reader import DEFAULT_MAX_RECORD_BYTES, RecordTooLargeError, read_lines
from codex_ml.data.records import Records

SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")


def load_csv(
    path: str | PathLike[str],
    *,
    text_field: str = "text",
    delimiter: str = ",",
    encoding: str = "utf-8",
    skip_blank: bool = True,
    max_records: int | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    prompt_field: str | None = None,
    completion_field: str | None = None,
    messages_field: str | None = None,
    chat_template: str | None = None,
) -> Records:
    """The ``text_field`` column of CSV files (a file, shards or a glob) with a header row.

    With ``prompt_field`` and ``completion_field`` (columns), or ``messages_field``
    (a column of JSON lists), each row is an instruction example instead
    (:mod:`codex_ml.data.examples`).
    """
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValueError(f"delimiter must be one character, got {delimiter!r}.")
    shape = RecordShape(
        text_field, prompt_field, completion_field, messages_field, chat_template=chat_template
    )
    records = field_records(
        path,
        lambda file: _file_records(file, shape, delimiter, encoding, max_record_bytes),
        loader="csv",
        suffixes=SUFFIXES,
        text_field=shape.fields[0],
        skip_blank=skip_blank,
        max_records=max_records,
        max_record_bytes=max_record_bytes,
    )
    # The csv module's own cap (128 KiB by default) would cut long texts; ours is the bound.
    csv.field_size_limit(max(csv.field_size_limit(), max_record_bytes))
    return records


def _file_records(
    path: Path, shape: RecordShape, delimiter: str, encoding: str, max_record_bytes: int
) -> Iterator[Record]:
    position = {"line": 0, "offset": 0}

    def lines() -> Iterator[str]:
        for number, offset, raw in read_lines(path, max_record_bytes=max_record_bytes):
            position.update(line=number, offset=offset)
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{path}, line {number}: not valid {encoding} ({exc.reason}). Pass the "
                    "file's real encoding as encoding=..., or convert it."
                ) from None
            # With its line end: csv needs it to tell a quoted newline from a row's end.
            yield (text.removeprefix("\ufeff") if number == 1 else text) + "\n"

    rows = csv.reader(lines(), delimiter=delimiter)
    try:
        header = next(rows, None)
        if header is None:
            return
        missing = [name for name in shape.fields if name not in header]
        if missing:
            raise ValueError(
                f"{path}, line 1: no column {missing[0]!r} in the header row ({shape.describe}); "
                f"the columns are {', '.join(repr(h) for h in header)}. Set the setting to the "
                "column that holds it (and delimiter= if the header is one long name)."
            )
        columns = [header.index(name) for name in shape.fields]
        for row in rows:
            if not row:
                continue
            if max(columns) >= len(row):
                column = max(columns)
                raise ValueError(
                    f"{path}, line {position['line']}: the row has {len(row)} fields, but "
                    f"{header[column]!r} is column {column + 1} of the header. Fix the row, or "
                    "the delimiter= if it is not a comma."
                )
            if shape.kind == "text":
                yield row[columns[0]]
            else:
                where = f"{path}, line {position['line']}"
                yield shape.read({header[c]: row[c] for c in columns}, where=where)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise RecordTooLargeError(
                path, position["offset"], max_record_bytes, f"a field on line {position['line']}"
            ) from None
        raise ValueError(f"{path}, line {position['line']}: not valid CSV ({exc}).") from None
