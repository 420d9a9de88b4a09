"""A data loader that yields short, deterministic sentences."""

from __future__ import annotations

import random

_SUBJECTS = ["the cat", "a dog", "the child", "my friend"]
_VERBS = ["sees", "likes", "follows", "draws"]
_OBJECTS = ["the moon", "a red ball", "the river", "an old map"]


def build(n: int = 100, seed: int = 0) -> list[str]:
    """``n`` sentences built from a tiny grammar, the same for the same ``seed``."""
    rng = random.Random(seed)
    return [
        f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}." for _ in range(n)
    ]
