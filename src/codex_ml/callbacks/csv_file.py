"""``csv``: ``<run_dir>/metrics.csv``, a row per log and eval record, a column per number."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from codex_ml.callbacks.scalars import scalars
from codex_ml.runfiles import RUN_DIR_NAMES, clash


class CSVCallback:
    """Rows of ``event, step`` and every number; a column appears when its number first does.

    Rows are appended as they come; when a record brings a new number (the
    first evaluation, say) the file is rewritten once with the wider header,
    earlier rows leaving that column empty. Written through :mod:`codex_ml.fsio`
    (never through a link). Rank 0 only. ``filename`` may not be one of the
    run's own names (:func:`codex_ml.runfiles.clash`): refused when the
    callback is built, before the run trains.
    """

    def __init__(self, filename: str = "metrics.csv") -> None:
        from codex_ml.config import ConfigError

        why = clash(filename)
        if why is not None:
            raise ConfigError(
                f"callbacks.csv.filename={filename!r} {why}; the csv callback writes one file "
                "of its own at the top of the run directory, beside the run's files "
                f"({', '.join(RUN_DIR_NAMES)}). Give it another name, such as metrics.csv.",
                where="callbacks.csv.filename",
            )
        self.filename = filename
        self._path: Path | None = None
        self._columns: list[str] = ["event", "step"]
        self._rows: list[dict[str, Any]] = []
        self._file: IO[str] | None = None

    def on_train_start(self, run: Any) -> None:
        if run.is_main:
            self._path = Path(run.run_dir) / self.filename
            self._rewrite()

    def on_log(self, run: Any, record: Mapping[str, Any]) -> None:
        self._add("log", record)

    def on_evaluate(self, run: Any, metrics: Mapping[str, Any]) -> None:
        self._add("eval", metrics)

    def on_train_end(self, run: Any, summary: Mapping[str, Any]) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _add(self, event: str, record: Mapping[str, Any]) -> None:
        if self._path is None:
            return
        row = {"event": event, "step": record.get("step"), **scalars(record)}
        self._rows.append(row)
        new = [key for key in row if key not in self._columns]
        if new:
            self._columns += new
            self._rewrite()
        else:
            assert self._file is not None
            self._file.write(self._format([row], header=False))
            self._file.flush()

    def _rewrite(self) -> None:
        from codex_ml import fsio

        assert self._path is not None
        if self._file is not None:
            self._file.close()
        fsio.write_atomic(self._path, self._format(self._rows, header=True))
        self._file = fsio.open_append(self._path)

    def _format(self, rows: list[dict[str, Any]], *, header: bool) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self._columns, lineterminator="\n")
        if header:
            writer.writeheader()
        # str() of a float is its shortest exact form; of the event name, the bare word.
        writer.writerows({k: ("" if v is None else str(v)) for k, v in row.items()} for row in rows)
        return buffer.getvalue()
