"""The offline catalogue's reward models: ``evaluate(prompt, completion) -> float``."""

from codex_ml.rewards.heuristic import DEFAULT_BANNED_PHRASES, HeuristicRewardModel

__all__ = ["DEFAULT_BANNED_PHRASES", "HeuristicRewardModel"]
