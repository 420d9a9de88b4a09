"""Help text for the terminal: module docstrings are reST, a terminal wants plain text."""

from __future__ import annotations


def plain(doc: str | None) -> str:
    """``doc`` without reST's double backticks (``codex-ml`` reads as codex-ml)."""
    return (doc or "").replace("``", "")
