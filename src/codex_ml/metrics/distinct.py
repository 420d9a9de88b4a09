"""Distinct-n: the diversity of generated text.

The number of distinct n-grams divided by the total number of n-grams over all
predictions, with white-space tokens and n-grams that never cross from one
prediction into the next. References are not used. No n-grams at all gives 0.0.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from codex_ml.protocols import Metric


def distinct_n(n: int) -> Metric:
    """Build the dist-n metric for n-grams of ``n`` white-space tokens."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"distinct_n needs a positive integer n; got {n!r}.")

    def metric(preds: Iterable[str] | str, targets: Any = None) -> float:
        texts = [preds] if isinstance(preds, str) else preds
        seen: set[tuple[str, ...]] = set()
        total = 0
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(
                    f"dist-{n} scores strings; prediction {index} is {type(text).__name__}. "
                    "Decode token ids to text first."
                )
            tokens = text.split()
            grams = list(zip(*(tokens[k:] for k in range(n)), strict=False))
            total += len(grams)
            seen.update(grams)
        return len(seen) / total if total else 0.0

    metric.__name__ = metric.__qualname__ = f"distinct_{n}"
    metric.__doc__ = f"Distinct {n}-grams / total {n}-grams over all predictions."
    return metric


distinct_1: Metric = distinct_n(1)
distinct_2: Metric = distinct_n(2)


def build_distinct_1() -> Metric:
    """Distinct unigrams / total unigrams over all predictions (dist-1)."""
    return distinct_1


def build_distinct_2() -> Metric:
    """Distinct bigrams / total bigrams over all predictions (dist-2)."""
    return distinct_2
