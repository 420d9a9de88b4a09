"""What the public API promises a type checker (checked by mypy --strict and pyright strict).

Never run: every line is for the checkers. A ``# type: ignore[code]`` line is
an expected error: mypy's ``--warn-unused-ignores`` (part of ``--strict``) and
pyright's ``reportUnnecessaryTypeIgnoreComment`` fail the check if it is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from typing_extensions import assert_type

from codex_ml.adapters.freeze import Freeze
from codex_ml.adapters.lora import LoRA
from codex_ml.protocols import Adapter, Metric, Model, RewardModel, Tokenizer, Trainer
from codex_ml.registry import (
    get_adapter,
    get_data_loader,
    get_metric,
    get_model,
    get_reward_model,
    get_tokenizer,
    get_trainer,
    list_adapters,
    list_metrics,
    register_metric,
    register_tokenizer,
)
from codex_ml.rewards.heuristic import HeuristicRewardModel
from codex_ml.tokenizers.byte_level import ByteTokenizer


# The decorator keeps the factory's own signature and return type.
@register_metric("typed_metric")
def build_typed(*, scale: float = 1.0) -> Callable[[list[float]], float]:
    return lambda values: scale * sum(values)


assert_type(build_typed(scale=2.0)([1.0]), float)
build_typed(scale="big")  # type: ignore[arg-type]

# The direct call returns what it was given.
assert_type(register_tokenizer("typed_bytes", ByteTokenizer), type[ByteTokenizer])

# Each get_<kind> returns its kind's protocol, whatever the key.
assert_type(get_tokenizer("bytes"), Tokenizer)
assert_type(get_tokenizer("bytes").encode("a"), list[int])
assert_type(get_model("decoder_only", {"n_layer": 2}), Model)
assert_type(get_metric("ppl"), Metric)
assert_type(get_metric("ppl")([0.1, 0.2]), float)
assert_type(get_data_loader("offline:tiny-corpus"), Iterable[str])
assert_type(get_trainer("offline:functional", max_steps=1), Trainer)
assert_type(get_reward_model("offline:heuristic"), RewardModel)
assert_type(list_metrics(), list[str])
assert_type(get_adapter("lora", r=4), Adapter)
assert_type(get_adapter("lora").trainable_state(object()), Mapping[str, Any])
assert_type(list_adapters(), list[str])
get_metric(3)  # type: ignore[arg-type]
get_model("decoder_only", ["n_layer"])  # type: ignore[arg-type]

# The shipped components satisfy the protocols.
tokenizer: Tokenizer = ByteTokenizer()
reward: RewardModel = HeuristicRewardModel()
lora: Adapter = LoRA(r=4)
freeze: Adapter = Freeze(trainable=["blocks.3.*"])
