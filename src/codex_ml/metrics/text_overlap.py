"""Exact match and token-overlap F1 between predicted and reference strings.

Both compare SQuAD-style normalised text: lower case, punctuation removed, the
English articles "a", "an" and "the" removed, white space collapsed. Scores are
averaged over (prediction, reference) pairs. Inputs are two equally long
sequences of strings, or a single pair of strings.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from codex_ml.protocols import Metric

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


def normalize_answer(text: str) -> str:
    """The SQuAD normal form of ``text`` that both metrics compare."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION))
    return " ".join(text.split())


def exact_match_score(pred: str, target: str) -> float:
    """1.0 if the two strings are equal after normalisation, else 0.0."""
    return float(normalize_answer(pred) == normalize_answer(target))


def f1_score(pred: str, target: str) -> float:
    """Token-overlap F1 of one pair; two empty answers agree (1.0), one empty one does not (0.0)."""
    pred_tokens = normalize_answer(pred).split()
    target_tokens = normalize_answer(target).split()
    if not pred_tokens or not target_tokens:
        return float(pred_tokens == target_tokens)
    common = sum((Counter(pred_tokens) & Counter(target_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(target_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(preds: Sequence[str] | str, targets: Sequence[str] | str) -> float:
    """Mean exact match over (prediction, reference) pairs."""
    pairs = _pairs("exact_match", preds, targets)
    return sum(exact_match_score(p, t) for p, t in pairs) / len(pairs)


def f1(preds: Sequence[str] | str, targets: Sequence[str] | str) -> float:
    """Mean token-overlap F1 over (prediction, reference) pairs."""
    pairs = _pairs("f1", preds, targets)
    return sum(f1_score(p, t) for p, t in pairs) / len(pairs)


def _pairs(
    name: str, preds: Sequence[str] | str, targets: Sequence[str] | str
) -> list[tuple[str, str]]:
    if isinstance(preds, str) != isinstance(targets, str):
        raise TypeError(
            f"{name} needs preds and targets both as strings (one pair) or both as sequences of "
            f"strings; got {type(preds).__name__} and {type(targets).__name__}."
        )
    if isinstance(preds, str):
        return [(preds, targets)]  # type: ignore[list-item]
    preds, targets = list(preds), list(targets)
    if len(preds) != len(targets):
        raise ValueError(
            f"{name} needs one reference per prediction; got {len(preds)} predictions and "
            f"{len(targets)} references."
        )
    if not preds:
        raise ValueError(f"{name} got no predictions; pass at least one (prediction, reference).")
    for index, (pred, target) in enumerate(zip(preds, targets, strict=True)):
        if not isinstance(pred, str) or not isinstance(target, str):
            raise TypeError(
                f"{name} compares strings; pair {index} is ({type(pred).__name__}, "
                f"{type(target).__name__}). Decode token ids to text first."
            )
    return list(zip(preds, targets, strict=True))


def build_exact_match() -> Metric:
    """Exact match after SQuAD normalisation, averaged over pairs."""
    return exact_match


def build_f1() -> Metric:
    """SQuAD token-overlap F1, averaged over pairs."""
    return f1
