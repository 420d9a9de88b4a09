"""The train/eval split, decided one record at a time, so a stream can be split as it is read.

Record ``i`` (counting from 0) is held out for evaluation when
``floor((i + 1) * f + u) > floor(i * f + u)``, with ``f`` the eval fraction
and ``u`` a number in [0, 1) drawn from ``random.Random(seed)``. That is
systematic sampling: the held-out records are spread evenly through the
corpus, there are ``floor(n * f + u)`` of them (``n * f`` rounded, up or down
by the seed), and which ones depends only on ``seed``, ``f`` and the record
order, never on the length of the corpus, so nothing has to be counted or held
first. Two fixes keep a tiny corpus trainable, and need a look-ahead of one
record: a single record is always trained on, and if the rule picked no eval
record (or every record), the last record changes sides.

``codex-ml train`` (through the token store) and ``codex-ml evaluate`` both
use :func:`assign`, so evaluate scores exactly the records train held out.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def check_eval_fraction(value: object) -> float:
    """``run.eval_fraction`` as a float in [0, 1), or a ValueError that says so."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"run.eval_fraction: must be in [0, 1), got {value!r}.")
    return float(value)


def assign(records: Iterable[T], *, eval_fraction: float, seed: int) -> Iterator[tuple[bool, T]]:
    """``(held_out, record)`` for each record, in order; see the module docstring for the rule."""
    fraction = check_eval_fraction(eval_fraction)
    offset = random.Random(seed).random()
    counts = [0, 0]  # train, eval
    previous: tuple[bool, T] | None = None
    floor = 0  # floor(index * fraction + offset) for the record before; int() floors here
    for index, record in enumerate(records):
        reached = int((index + 1) * fraction + offset)
        held_out = reached > floor
        floor = reached
        if previous is not None:
            counts[previous[0]] += 1
            yield previous
        previous = (held_out, record)
    if previous is None:
        return
    held_out, record = previous
    if counts == [0, 0]:  # a single record: it is all there is to train on
        held_out = False
    elif fraction > 0 and counts[1] == 0:
        held_out = True
    elif counts[0] == 0:
        held_out = False
    yield held_out, record
