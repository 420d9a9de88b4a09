"""The offline catalogue's metrics: ``metric(preds, targets) -> float``.

Each ``build_*`` function is a registry factory; called with its defaults it
returns a prebuilt module-level metric, so ``get_metric("ppl")`` is cheap.
None of these modules imports torch unless a tensor is passed in.
"""

from codex_ml.metrics.distinct import build_distinct_1, build_distinct_2, distinct_n
from codex_ml.metrics.perplexity import build_perplexity, perplexity
from codex_ml.metrics.text_overlap import build_exact_match, build_f1, exact_match, f1
from codex_ml.metrics.token_accuracy import build_token_accuracy, token_accuracy
from codex_ml.metrics.weighted_accuracy import WeightedAccuracy, build_weighted_accuracy

__all__ = [
    "WeightedAccuracy",
    "build_distinct_1",
    "build_distinct_2",
    "build_exact_match",
    "build_f1",
    "build_perplexity",
    "build_token_accuracy",
    "build_weighted_accuracy",
    "distinct_n",
    "exact_match",
    "f1",
    "perplexity",
    "token_accuracy",
]
