"""Text records from JSON Lines files (``.jsonl``, ``.jsonl.gz``): one JSON object per line.

The text is ``text_field`` of each object (a dotted path reaches into nested
objects). Lines go through the shared bounded reader, so a line that is not
JSON names its file and line, and a huge one is refused at ``max_record_bytes``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

from codex_ml.data.examples import Record, RecordShape, record_texts
from codex_ml.data.fields import field_records
from codex_ml.data.reader import DEFAULT_MAX_RECORD_BYTES, read_lines
from codex_ml.data.records import Records

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")


class JSONLineError(ValueError):
    """A line of a JSON Lines file is not a JSON object."""

    def __init__(self, path: Path, line_number: int, reason: str) -> None:
        self.path = path
        self.line_number = line_number
        super().__init__(
            f"{path}, line {line_number}: {reason}. A JSON Lines file holds one JSON object "
            "per line; fix or remove that line (records already read are not affected)."
        )


def load_jsonl(
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
    """``text_field`` of each JSON object in JSON Lines files (a file, shards or a glob).

    With ``prompt_field`` and ``completion_field``, or ``messages_field``, each
    object is an instruction example instead (:mod:`codex_ml.data.examples`).
    """
    shape = RecordShape(
        text_field, prompt_field, completion_field, messages_field, chat_template=chat_template
    )
    return field_records(
        path,
        lambda file: _file_records(file, shape, max_record_bytes),
        loader="jsonl",
        suffixes=SUFFIXES,
        text_field=shape.fields[0],
        skip_blank=skip_blank,
        max_records=max_records,
        max_record_bytes=max_record_bytes,
    )


def _file_records(path: Path, shape: RecordShape, max_record_bytes: int) -> Iterator[Record]:
    # Blank lines between objects are common and harmless (and skipped in bulk).
    for number, _, raw in read_lines(path, max_record_bytes=max_record_bytes, skip_blank=True):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except UnicodeDecodeError as exc:
            raise JSONLineError(path, number, f"not valid UTF-8 ({exc.reason})") from None
        except json.JSONDecodeError as exc:
            raise JSONLineError(
                path, number, f"not JSON ({exc.msg} at column {exc.colno})"
            ) from None
        except RecursionError:
            raise JSONLineError(
                path, number, "JSON nested more deeply than Python's reader allows (~1,000 levels)"
            ) from None
        if not isinstance(record, dict):
            raise JSONLineError(path, number, f"a JSON {type(record).__name__}, not an object")
        read = shape.read(record, where=f"{path}, line {number}")
        if b"\\u" in raw:  # only an escape can make a lone surrogate
            for text in record_texts(read):
                _refuse_lone_surrogate(path, number, text)
        yield read


def _refuse_lone_surrogate(path: Path, number: int, text: str) -> None:
    """A ``\\ud800``-style escape alone is no character: it cannot be encoded or tokenised."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        escape = f"\\u{ord(text[exc.start]):04x}"
        raise JSONLineError(
            path,
            number,
            f"the text holds the escape {escape} on its own, half of a UTF-16 surrogate pair and "
            f"not a character (at character {exc.start} of the text)",
        ) from None
