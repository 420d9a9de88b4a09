"""What ``codex-ml plugins list`` and ``plugins doctor`` both print: faults and foreign text.

Everything they print comes from installed distributions (keys, names,
versions, targets, error messages), so text output goes through :func:`shown`:
a name holding ``\\n`` or a terminal escape cannot forge a row or repaint the
screen. ``--json`` output is escaped by JSON itself.
"""

from __future__ import annotations

from codex_ml.registry.faults import distinct_problems

__all__ = ["distinct_problems", "shown"]


def shown(text: object) -> str:
    """``text`` with every character that does not print written as its escape (``\\n``)."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )
