"""The text of a structured record (a JSON object, a CSV row): ``text_field``, dotted for nesting.

``text_field="meta.body"`` reads ``record["meta"]["body"]``. A field that is
missing names the fields the record has; a value that is not text names its
type. Both errors say where the record is (``where``: file and line or row).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from codex_ml.data.reader import check_max_record_bytes
from codex_ml.data.records import Records, stream_records
from codex_ml.data.sources import resolve_files


class MissingFieldError(KeyError, ValueError):
    """A record has no ``text_field``; the message lists the fields it has (a user error)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def check_text_field(text_field: object) -> str:
    if not isinstance(text_field, str) or not text_field.strip():
        raise ValueError(f"text_field must be a non-empty field name, got {text_field!r}.")
    return text_field


def field_text(record: Any, text_field: str, *, where: str, option: str = "text_field") -> str:
    """``record``'s ``text_field`` (a dotted path), which must be a str.

    ``option`` is the setting that named the field, for messages (``prompt_field``...).
    """
    value = field_value(record, text_field, where=where, option=option)
    if not isinstance(value, str):
        raise ValueError(
            f"{where}: {option}={text_field!r} is a {type(value).__name__}, not text. Point "
            f"{option}= at a field that holds a string."
        )
    return value


def field_value(record: Any, field: str, *, where: str, option: str = "text_field") -> Any:
    """What ``record`` holds at ``field`` (a dotted path), of any type."""
    value = record
    walked: list[str] = []
    for part in field.split("."):
        if not isinstance(value, Mapping):
            at = ".".join(walked) or "the record"
            raise ValueError(
                f"{where}: {option}={field!r} goes into {at}, but that is a "
                f"{type(value).__name__}, not an object. Point {option}= at a field of the record."
            )
        if part not in value:
            at = f" in {'.'.join(walked)}" if walked else ""
            have = ", ".join(repr(k) for k in list(value)[:20]) or "none"
            raise MissingFieldError(
                f"{where}: no field {part!r}{at} ({option}={field!r}); this record has "
                f"the fields {have}. Set {option}= to the one that holds it "
                "(a dotted path such as 'meta.body' for nested objects)."
            )
        value = value[part]
        walked.append(part)
    return value


def field_records(
    path: str | PathLike[str],
    texts_of: Callable[[Path], Iterator[str]],
    *,
    loader: str,
    suffixes: Sequence[str],
    text_field: str,
    skip_blank: bool,
    max_records: int | None,
    max_record_bytes: int,
) -> Records:
    """What the structured loaders share: checked settings, the files, the field's texts."""
    check_text_field(text_field)
    check_max_record_bytes(max_record_bytes)
    files = resolve_files(path, loader=loader, suffixes=tuple(suffixes))
    return stream_records(
        files,
        texts_of,
        loader=loader,
        skip_blank=skip_blank,
        max_records=max_records,
        empty=lambda: f" (no non-blank {text_field!r})",
    )
