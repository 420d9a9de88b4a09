"""Label-weighted accuracy: ``sum(w[t] * [p == t]) / sum(w[t])`` over (pred, target) labels.

Weights come from a small JSON file: ``weights_path=`` (when the metric is
built, or per call), else ``CODEX_ML_WEIGHTED_ACCURACY_PATH``, else the shipped
``data/offline/weighted_accuracy.json``. Two formats are read::

    {"description": "...", "default_weight": 1.0, "weights": {"label": 2.0, ...}}
    {"positive": 1.5, "negative": 1.0}      # flat: the original codex-ml's format

Labels are compared as strings (``1`` and ``"1"`` are the same label); labels
the file does not list weigh ``default_weight`` (1.0 when absent, and always in
the flat format). A file is read once, not per call: a ``weights_path=`` given
per call is read again only when the file changes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import cache, lru_cache
from os import PathLike
from pathlib import Path
from typing import Any, final

from codex_ml import resources
from codex_ml.metrics._arrays import flatten
from codex_ml.protocols import Metric

WEIGHTS_FILENAME = "weighted_accuracy.json"
#: The registry key, which every error names: the user may not know which metric read the file.
KEY = "offline:weighted-accuracy"
#: Read when no weights_path is given (the original codex-ml's variable).
PATH_ENV = "CODEX_ML_WEIGHTED_ACCURACY_PATH"


@final
class WeightedAccuracy:
    """Accuracy where each example counts with the weight of its target label."""

    __slots__ = ("default_weight", "source", "weights")

    weights: dict[str, float]
    default_weight: float
    source: str  # the file the weights came from ("" for a mapping)

    def __init__(
        self, weights: Mapping[str, float], *, default_weight: float = 1.0, source: str = ""
    ) -> None:
        self.weights = dict(weights)
        self.default_weight = default_weight
        self.source = source

    def __call__(
        self, preds: Any, targets: Any, *, weights_path: str | PathLike[str] | None = None
    ) -> float:
        """The weighted accuracy; ``weights_path=`` scores with that file's weights instead."""
        if weights_path is not None:
            return _per_call(Path(weights_path))(preds, targets)
        preds, targets = _labels(preds), _labels(targets)
        if len(preds) != len(targets):
            raise ValueError(
                f"{KEY} needs one target per prediction; got {len(preds)} "
                f"predictions and {len(targets)} targets."
            )
        if not targets:
            raise ValueError(f"{KEY} got no labels; pass at least one pair.")
        correct = total = 0.0
        for pred, target in zip(preds, targets, strict=True):
            weight = self.weights.get(target, self.default_weight)
            total += weight
            if pred == target:
                correct += weight
        if total == 0:
            raise ValueError(
                f"{KEY} is undefined here: every target label has weight 0 in "
                f"{self.source or 'the weights given'}."
            )
        return correct / total

    def __repr__(self) -> str:
        return f"WeightedAccuracy({len(self.weights)} labels from {self.source or '<mapping>'})"


def _labels(values: Any) -> list[str]:
    labels = [values] if isinstance(values, (str, int)) else flatten(values)
    return [str(label) for label in labels]


def load_weighted_accuracy(path: str | PathLike[str], *, origin: str = "") -> WeightedAccuracy:
    """Read and check a label-weights JSON file; every problem names the file and the metric.

    ``origin`` says where the path came from (``"CODEX_ML_WEIGHTED_ACCURACY_PATH"``),
    for the error when the file is missing.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        where = f" (from {origin})" if origin else ""
        raise FileNotFoundError(
            f"{KEY}: label weights file not found: {path}{where}. Pass weights_path= a JSON "
            f'file like {{"positive": 1.5, "negative": 1.0}}, set {PATH_ENV}, or restore '
            f"data/offline/{WEIGHTS_FILENAME}."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{KEY}: cannot read label weights file {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{KEY}: label weights file {path} is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg})."
        ) from exc
    if not isinstance(data, dict) or ("weights" in data and not isinstance(data["weights"], dict)):
        raise ValueError(
            f"{KEY}: label weights file {path} must hold a JSON object: labels to weights "
            f'({{"positive": 1.5, "negative": 1.0}}), or a "weights" object of them with an '
            f'optional "default_weight" ({{"weights": {{"label": 2.0}}, "default_weight": 1.0}}).'
        )
    if "weights" in data:
        table, default_weight = data["weights"], data.get("default_weight", 1.0)
    else:  # the flat format: every key is a label
        table, default_weight = data, 1.0
    weights = {str(label): _weight(path, repr(label), w) for label, w in table.items()}
    default_weight = _weight(path, "default_weight", default_weight)
    return WeightedAccuracy(weights, default_weight=default_weight, source=str(path))


def _weight(path: Path, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(
            f"{KEY}: label weights file {path}: weight for {name} must be a finite number, "
            f"got {value!r}."
        )
    if value < 0:
        raise ValueError(
            f"{KEY}: label weights file {path}: weight for {name} is negative ({value})."
        )
    return float(value)


@cache
def _default(path: Path, origin: str) -> WeightedAccuracy:
    # The default file does not change while the process runs: build it once.
    return load_weighted_accuracy(path, origin=origin)


def _per_call(path: Path) -> WeightedAccuracy:
    """The metric for a ``weights_path=`` given per call, read again only if the file changed."""
    try:
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None  # load_weighted_accuracy says what is wrong
    return _versioned(path, version)


@lru_cache(maxsize=16)
def _versioned(path: Path, version: tuple[int, int] | None) -> WeightedAccuracy:
    return load_weighted_accuracy(path, origin="weights_path=")


def build_weighted_accuracy(*, weights_path: str | PathLike[str] | None = None) -> Metric:
    """Label-weighted accuracy (weights: weights_path, $CODEX_ML_WEIGHTED_ACCURACY_PATH, shipped)"""
    if weights_path is not None:
        return load_weighted_accuracy(weights_path, origin="weights_path=")
    return _default(*resources.offline_file(WEIGHTS_FILENAME, PATH_ENV))
