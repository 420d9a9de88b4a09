"""A trainer that runs plain SGD for a few steps and reports its loss history."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any


class ToyTrainer:
    """Trains any codex-ml model with SGD on one sequence per step."""

    def __init__(self, max_steps: int = 10, lr: float = 0.5) -> None:
        self.max_steps = max_steps
        self.lr = lr

    def __call__(
        self,
        model: Any,
        tokenizer: Any,
        train_data: Iterable[str],
        eval_data: Iterable[str] | None = None,
        *,
        callbacks: Sequence[Callable[[dict[str, Any]], None]] = (),
    ) -> dict[str, Any]:
        import torch

        sequences = [tokenizer.encode(text) for text in train_data]
        sequences = [ids for ids in sequences if len(ids) > 1]
        optimizer = torch.optim.SGD(model.parameters(), lr=self.lr)
        history = []
        for step in range(1, self.max_steps + 1):
            ids = torch.tensor([sequences[(step - 1) % len(sequences)]])
            loss = model(ids, labels=ids).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            record = {"event": "log", "step": step, "loss": loss.item()}
            history.append(record)
            for callback in callbacks:
                callback(record)
        return {"history": history, "final_metrics": {"train_loss": history[-1]["loss"]}}
