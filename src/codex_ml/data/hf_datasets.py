"""Text records from Hugging Face ``datasets``, only ever from local files (never the hub).

``path`` is either a dataset saved with ``save_to_disk`` (a ``Dataset`` or a
``DatasetDict``, whose ``split`` is taken) or local data files (a file, shards
or a glob) read through ``datasets.load_dataset`` with the packaged builder for
their format (``json``, ``csv``, ``parquet``, ``text``), streaming, so nothing
is converted or cached. A name that is not a local path is refused before
``datasets`` is asked, so the hub is never contacted. ``datasets`` is in the
``data`` extra.
"""

from __future__ import annotations

from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

from codex_ml.data.examples import Record, RecordShape, record_texts
from codex_ml.data.extras import require
from codex_ml.data.reader import (
    DEFAULT_MAX_RECORD_BYTES,
    RecordTooLargeError,
    check_max_record_bytes,
)
from codex_ml.data.records import Records, check_max_records, limited
from codex_ml.data.sources import resolve_files

#: file name ending -> the packaged ``datasets`` builder that reads it.
BUILDERS = {
    ".jsonl": "json",
    ".json": "json",
    ".jsonl.gz": "json",
    ".json.gz": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".txt": "text",
    ".txt.gz": "text",
}
_SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def load_hf_dataset(
    path: str | PathLike[str],
    *,
    split: str = "train",
    text_field: str = "text",
    format: str | None = None,
    skip_blank: bool = True,
    max_records: int | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    prompt_field: str | None = None,
    completion_field: str | None = None,
    messages_field: str | None = None,
    chat_template: str | None = None,
) -> Records:
    """``text_field`` of a local ``datasets`` dataset (``save_to_disk`` folder or data files).

    With ``prompt_field`` and ``completion_field``, or ``messages_field``, each
    row is an instruction example instead (:mod:`codex_ml.data.examples`).
    """
    shape = RecordShape(
        text_field, prompt_field, completion_field, messages_field, chat_template=chat_template
    )
    check_max_record_bytes(max_record_bytes)
    check_max_records(max_records)
    if format is not None and format not in set(BUILDERS.values()):
        raise ValueError(
            f"format={format!r} is not one of {', '.join(sorted(set(BUILDERS.values())))}."
        )
    require("datasets", loader="hf-datasets")
    saved = Path(path).expanduser() if isinstance(path, (str, PathLike)) else None
    if saved is not None and saved.is_dir() and any((saved / m).is_file() for m in _SAVED_MARKERS):
        files = sorted(p for p in saved.rglob("*") if p.is_file())

        def rows() -> Iterator[dict[str, Any]]:
            return _saved_rows(saved, split)
    else:
        files = resolve_files(path, loader="hf-datasets", suffixes=tuple(BUILDERS))
        builder = format or _builder_of(files)

        def rows() -> Iterator[dict[str, Any]]:
            return _file_rows(files, builder, split)

    def texts() -> Iterator[Record]:
        for index, row in enumerate(rows()):
            where = f"{path} ({split} split), row {index + 1:,}"
            text = shape.read(row, where=where)
            if sum(map(len, record_texts(text))) > max_record_bytes:
                raise RecordTooLargeError(Path(path), 0, max_record_bytes, f"row {index + 1:,}")
            yield text

    return limited(
        texts,
        files=files,
        loader="hf-datasets",
        skip_blank=skip_blank,
        max_records=max_records,
        empty=lambda: f" (no non-blank {shape.fields[0]!r})",
    )


def _builder_of(files: list[Path]) -> str:
    builders = set()
    for file in files:
        name = file.name.lower()
        ending = next((e for e in sorted(BUILDERS, key=len, reverse=True) if name.endswith(e)), "")
        if not ending:
            raise ValueError(
                f"{file}: cannot tell its format from its name; pass format= one of "
                f"{', '.join(sorted(set(BUILDERS.values())))}."
            )
        builders.add(BUILDERS[ending])
    if len(builders) > 1:
        raise ValueError(
            f"the files mix formats ({', '.join(sorted(builders))}); point path= at files of "
            "one format, or pass format=."
        )
    return builders.pop()


def _saved_rows(folder: Path, split: str) -> Iterator[dict[str, Any]]:
    datasets = require("datasets", loader="hf-datasets")
    loaded = datasets.load_from_disk(str(folder))
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise ValueError(
                f"{folder}: no split {split!r}; the saved dataset has "
                f"{', '.join(repr(s) for s in loaded)}. Set split= to one of them."
            )
        loaded = loaded[split]
    return _batched_rows(loaded)


def _batched_rows(dataset: Any) -> Iterator[dict[str, Any]]:
    # Arrow batches, not row-by-row indexing: a memory-mapped table read in slices.
    for batch in dataset.iter(batch_size=1024):
        names = list(batch)
        for values in zip(*(batch[n] for n in names), strict=True):
            yield dict(zip(names, values, strict=True))


def _file_rows(files: list[Path], builder: str, split: str) -> Iterator[dict[str, Any]]:
    datasets = require("datasets", loader="hf-datasets")
    data_files = {split: [str(f) for f in files]}
    dataset = datasets.load_dataset(builder, data_files=data_files, split=split, streaming=True)
    yield from dataset
