"""Label-weighted accuracy: ``sum(w[t] * [p == t]) / sum(w[t])`` over (pred, target) labels.

Weights come from a small JSON file, by default the shipped
``data/offline/weighted_accuracy.json``::

    {"description": "...", "default_weight": 1.0, "weights": {"label": 2.0, ...}}

Labels are compared as strings (``1`` and ``"1"`` are the same label); labels
the file does not list weigh ``default_weight`` (1.0 when absent). The file is
read once, when the metric is built, never per call.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import cache
from os import PathLike
from pathlib import Path
from typing import Any, final

from codex_ml import resources
from codex_ml.metrics._arrays import flatten
from codex_ml.protocols import Metric

WEIGHTS_FILENAME = "weighted_accuracy.json"


@final
class WeightedAccuracy:
    """Accuracy where each example counts with the weight of its target label."""

    __slots__ = ("default_weight", "source", "weights")

    def __init__(
        self, weights: Mapping[str, float], *, default_weight: float = 1.0, source: str = ""
    ) -> None:
        self.weights = dict(weights)
        self.default_weight = default_weight
        self.source = source

    def __call__(self, preds: Any, targets: Any) -> float:
        preds, targets = _labels(preds), _labels(targets)
        if len(preds) != len(targets):
            raise ValueError(
                f"offline:weighted-accuracy needs one target per prediction; got {len(preds)} "
                f"predictions and {len(targets)} targets."
            )
        if not targets:
            raise ValueError("offline:weighted-accuracy got no labels; pass at least one pair.")
        correct = total = 0.0
        for pred, target in zip(preds, targets, strict=True):
            weight = self.weights.get(target, self.default_weight)
            total += weight
            if pred == target:
                correct += weight
        if total == 0:
            raise ValueError(
                "offline:weighted-accuracy is undefined here: every target label has weight 0 in "
                f"{self.source or 'the weights given'}."
            )
        return correct / total

    def __repr__(self) -> str:
        return f"WeightedAccuracy({len(self.weights)} labels from {self.source or '<mapping>'})"


def _labels(values: Any) -> list[str]:
    labels = [values] if isinstance(values, (str, int)) else flatten(values)
    return [str(label) for label in labels]


def load_weighted_accuracy(path: str | PathLike[str]) -> WeightedAccuracy:
    """Read and check a label-weights JSON file; every problem names the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"label weights file not found: {path}. Pass weights_path= a JSON file like "
            f'{{"weights": {{"label": 2.0}}}}, or restore data/offline/{WEIGHTS_FILENAME}.'
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read label weights file {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"label weights file {path} is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg})."
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("weights"), dict):
        raise ValueError(
            f'label weights file {path} must hold a JSON object with a "weights" object '
            f'mapping labels to weights, e.g. {{"weights": {{"label": 2.0}}}}.'
        )
    weights = {str(label): _weight(path, repr(label), w) for label, w in data["weights"].items()}
    default_weight = _weight(path, "default_weight", data.get("default_weight", 1.0))
    return WeightedAccuracy(weights, default_weight=default_weight, source=str(path))


def _weight(path: Path, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(
            f"label weights file {path}: weight for {name} must be a finite number, got {value!r}."
        )
    if value < 0:
        raise ValueError(f"label weights file {path}: weight for {name} is negative ({value}).")
    return float(value)


@cache
def _shipped(path: Path) -> WeightedAccuracy:
    # The shipped file never changes while the process runs: build it once.
    return load_weighted_accuracy(path)


def build_weighted_accuracy(*, weights_path: str | PathLike[str] | None = None) -> Metric:
    """Label-weighted accuracy; weights from data/offline/weighted_accuracy.json or weights_path."""
    if weights_path is None:
        return _shipped(resources.offline_data_dir() / WEIGHTS_FILENAME)
    return load_weighted_accuracy(weights_path)
