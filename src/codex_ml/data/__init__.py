"""The built-in data loaders: lazy streams of text records from files of common formats.

Each loader resolves ``path`` (a file, a directory of shards or a glob) when
called and reads nothing until its records are iterated; see
:mod:`codex_ml.data.records`. The token store that turns records into ids once
lives in :mod:`codex_ml.data.store`.
"""

from codex_ml.data.fields import MissingFieldError
from codex_ml.data.jsonl import JSONLineError
from codex_ml.data.lines import LineDecodeError, load_lines, load_tiny_corpus
from codex_ml.data.reader import DEFAULT_MAX_RECORD_BYTES, RecordTooLargeError
from codex_ml.data.records import Records

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "JSONLineError",
    "LineDecodeError",
    "MissingFieldError",
    "RecordTooLargeError",
    "Records",
    "load_lines",
    "load_tiny_corpus",
]
