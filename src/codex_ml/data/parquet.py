"""Text records from Parquet files: one column, streamed a batch of rows at a time.

Only ``text_field``'s column is read (``text_field="meta.body"`` reads the
struct column ``meta`` and walks into it), in batches with ``pyarrow``, so a
file of any size costs one batch of memory. ``pyarrow`` is in the ``data`` extra.
"""

from __future__ import annotations

from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

from codex_ml.data.examples import Record, RecordShape, record_texts
from codex_ml.data.extras import require
from codex_ml.data.fields import field_records, field_text
from codex_ml.data.reader import DEFAULT_MAX_RECORD_BYTES, RecordTooLargeError
from codex_ml.data.records import Records

SUFFIXES = (".parquet", ".pq")
_BATCH_ROWS = 4096


def load_parquet(
    path: str | PathLike[str],
    *,
    text_field: str = "text",
    skip_blank: bool = True,
    max_records: int | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    prompt_field: str | None = None,
    completion_field: str | None = None,
    messages_field: str | None = None,
    chat_template: str | None = None,
) -> Records:
    """``text_field`` of every row of Parquet files (a file, shards or a glob).

    With ``prompt_field`` and ``completion_field``, or ``messages_field`` (a list
    of structs with ``role`` and ``content``), each row is an instruction
    example instead (:mod:`codex_ml.data.examples`).
    """
    require("pyarrow.parquet", loader="parquet")  # a missing extra fails now, not mid-run
    shape = RecordShape(
        text_field, prompt_field, completion_field, messages_field, chat_template=chat_template
    )

    def read(file: Path) -> Iterator[Record]:
        if shape.kind == "text":
            return _file_texts(file, text_field, max_record_bytes)
        return _file_examples(file, shape, max_record_bytes)

    return field_records(
        path,
        read,
        loader="parquet",
        suffixes=SUFFIXES,
        text_field=shape.fields[0],
        skip_blank=skip_blank,
        max_records=max_records,
        max_record_bytes=max_record_bytes,
    )


def _open(path: Path, fields: tuple[str, ...], describe: str) -> tuple[Any, list[str]]:
    """The Parquet file at ``path``, and the columns ``fields`` read (refused when missing)."""
    pq = require("pyarrow.parquet", loader="parquet")
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a bad file
        raise ValueError(f"{path}: not a readable Parquet file ({exc}).") from None
    columns = list(dict.fromkeys(field.partition(".")[0] for field in fields))
    names = parquet.schema_arrow.names
    for column in columns:
        if column not in names:
            raise ValueError(
                f"{path}: no column {column!r} ({describe}); the columns are "
                f"{', '.join(repr(n) for n in names)}. Set it to the column that holds the text."
            )
    return parquet, columns


def _file_examples(path: Path, shape: RecordShape, max_record_bytes: int) -> Iterator[Record]:
    parquet, columns = _open(path, shape.fields, shape.describe)
    row = 0
    for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=columns):
        for values in zip(*(batch.column(i).to_pylist() for i in range(len(columns))), strict=True):
            row += 1
            where = f"{path}, row {row:,}"
            example = shape.read(dict(zip(columns, values, strict=True)), where=where)
            if sum(map(len, record_texts(example))) > max_record_bytes:  # characters: a bound
                raise RecordTooLargeError(path, 0, max_record_bytes, f"row {row:,}")
            yield example


def _file_texts(path: Path, text_field: str, max_record_bytes: int) -> Iterator[str]:
    parquet, (column,) = _open(path, (text_field,), f"text_field={text_field!r}")
    rest = text_field.partition(".")[2]
    row = 0
    for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=[column]):
        for value in batch.column(0).to_pylist():
            row += 1
            where = f"{path}, row {row:,}"
            if value is None:
                continue  # a null is a missing text, like a blank line
            text = field_text({column: value}, text_field, where=where) if rest else value
            if not isinstance(text, str):
                raise ValueError(
                    f"{where}: column {column!r} holds {type(text).__name__}, not text. Set "
                    "text_field= to a string column."
                )
            if len(text) > max_record_bytes:  # characters: a cheap lower bound on bytes
                raise RecordTooLargeError(path, 0, max_record_bytes, f"row {row:,}")
            yield text
