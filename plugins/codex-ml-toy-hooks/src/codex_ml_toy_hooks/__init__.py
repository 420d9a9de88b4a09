"""An example hook plugin: each hook returns a mapping of key -> factory."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from codex_ml.plugins import LazyFactory, hookimpl


def build_length_ratio() -> Callable[[Sequence[str], Sequence[str]], float]:
    """Mean of min/max length ratios between predicted and target strings."""

    def length_ratio(preds: Sequence[str], targets: Sequence[str]) -> float:
        ratios = [
            min(len(p), len(t)) / max(len(p), len(t)) if max(len(p), len(t)) else 1.0
            for p, t in zip(preds, targets, strict=True)
        ]
        return sum(ratios) / len(ratios)

    return length_ratio


class ToyReward:
    """Scores a completion by how close its length is to ``target_words`` (in [-1, 1])."""

    def __init__(self, target_words: int = 20) -> None:
        self.target_words = target_words

    def evaluate(self, prompt: str, completion: str) -> float:
        words = len(completion.split())
        return 1.0 - 2.0 * min(1.0, abs(words - self.target_words) / self.target_words)

    def batch_evaluate(self, pairs):  # type: ignore[no-untyped-def]
        return [self.evaluate(prompt, completion) for prompt, completion in pairs]


@hookimpl
def codex_ml_register_metrics():  # type: ignore[no-untyped-def]
    return {"toy_length_ratio": build_length_ratio}


@hookimpl
def codex_ml_register_tokenizers():  # type: ignore[no-untyped-def]
    # Lazy: the tokenizer module is imported only when the key is first used.
    return {"toy_whitespace": LazyFactory("codex_ml_toy_hooks.whitespace:WhitespaceTokenizer")}


@hookimpl
def codex_ml_register_reward_models():  # type: ignore[no-untyped-def]
    return {"toy_reward": ToyReward}
