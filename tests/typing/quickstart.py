from collections.abc import Sequence

from codex_ml.protocols import Metric
from codex_ml.registry import get_metric, get_tokenizer, list_models, register_metric


@register_metric("toy_exact")
def build_toy_exact(*, ignore_case: bool = False) -> Metric:
    """Fraction of predictions equal to their targets."""

    def toy_exact(preds: Sequence[str], targets: Sequence[str]) -> float:
        pairs = zip(preds, targets, strict=True)
        if ignore_case:
            return sum(p.lower() == t.lower() for p, t in pairs) / len(targets)
        return sum(p == t for p, t in pairs) / len(targets)

    return toy_exact


tokenizer = get_tokenizer("bytes")  # a Tokenizer: encode, decode, vocab_size, ...
ppl = get_metric("ppl")  # the metric callable
exact = get_metric("toy_exact", ignore_case=True)
print(tokenizer.decode(tokenizer.encode("hi")), ppl([0.6931471805599453] * 4), list_models())
print(exact(["Paris"], ["paris"]))
