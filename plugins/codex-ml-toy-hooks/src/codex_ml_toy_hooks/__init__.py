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


def build_sign_sgd(params, *, lr: float, momentum: float = 0.0):  # type: ignore[no-untyped-def]
    """signSGD: each parameter moves by ``lr`` against the sign of its gradient.

    An optimizer factory takes the parameter groups (weight decay already set
    per group) and ``lr``, and returns a ``torch.optim.Optimizer``.
    """
    import torch

    class SignSGD(torch.optim.Optimizer):
        def __init__(self, params, lr: float, momentum: float, weight_decay: float = 0.0):  # type: ignore[no-untyped-def]
            super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

        @torch.no_grad()
        def step(self, closure=None):  # type: ignore[no-untyped-def]
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if group["weight_decay"]:
                        p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(torch.sign(p.grad), alpha=-group["lr"])

    return SignSGD(params, lr=lr, momentum=momentum)


@hookimpl
def codex_ml_register_optimizers():  # type: ignore[no-untyped-def]
    return {"toy_sign_sgd": build_sign_sgd}


@hookimpl
def codex_ml_train_end(run, summary):  # type: ignore[no-untyped-def]
    # A lifecycle hook: runs on every rank; this one only reads, so it needs no rank check.
    if summary.get("status") == "failed" and run.is_main:
        print(f"toy_hooks: the run in {run.run_dir} failed: {summary.get('error')}")
