"""One load at a time per entry, and a cycle of loads is an error, not a deadlock.

Loading a lazy entry imports third-party code, which may look keys up, and
those lookups may load further entries. With a plain lock per entry, an entry
point whose module asks for its own key at import time waits for itself for
ever, and so do two entries whose imports ask for each other from two threads.
Here, as in the import system's module locks, every thread says which entry it
is loading and which one it waits for; a wait that would close a cycle raises
:class:`LoadCycle` instead of blocking.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

TYPE_CHECKING = False  # typing is not imported on the listing path (~2 ms per process)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

__all__ = ["LoadCycle", "turn"]

_changed = threading.Condition(threading.Lock())
_owner: dict[Any, int] = {}  # entry being loaded -> the thread loading it
_loading: dict[int, list[Any]] = {}  # thread -> the entries it is loading, outermost first
_waiting: dict[int, Any] = {}  # thread -> the entry it waits to load


class LoadCycle(Exception):
    """Loading ``chain[-1]`` would wait for itself; ``chain`` is the cycle, first entry repeated."""

    def __init__(self, chain: list[Any]) -> None:
        super().__init__(chain)
        self.chain = chain


@contextmanager
def turn(entry: Any) -> Iterator[None]:
    """Hold ``entry``'s load turn for the block; wait for another thread's turn to end first."""
    me = threading.get_ident()
    with _changed:
        while entry in _owner:
            chain = _cycle(entry, me)
            if chain is not None:
                raise LoadCycle(chain)
            _waiting[me] = entry
            try:
                _changed.wait()
            finally:
                del _waiting[me]
        _owner[entry] = me
        _loading.setdefault(me, []).append(entry)
    try:
        yield
    finally:
        with _changed:
            del _owner[entry]
            stack = _loading[me]
            stack.pop()
            if not stack:
                del _loading[me]
            _changed.notify_all()


def _cycle(entry: Any, me: int) -> list[Any] | None:
    """The loads that waiting for ``entry`` would close into a cycle, or None."""
    path: list[Any] = []
    for _ in range(len(_owner) + 1):  # each hop is a different thread, or it is a cycle
        owner = _owner.get(entry)
        if owner is None:
            return None
        stack = _loading[owner]
        path += stack[stack.index(entry) :]
        if owner == me:
            return [*path, path[0]]
        entry = _waiting.get(owner)
        if entry is None:
            return None  # the owner is busy, not waiting: its turn will end
    return None
