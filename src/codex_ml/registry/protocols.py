"""What a registry source offers: the interface for type checkers and for authors of sources.

Kept apart from :mod:`codex_ml.registry.base`, which is on the path of every
listing, so that listing never imports :mod:`typing`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from codex_ml.registry.base import Provider, SourceProblem

__all__ = ["Source"]


class Source(Protocol):
    """Offers candidate providers for a kind, and forgets them on ``refresh``."""

    def provide(self, kind: str) -> tuple[list[Provider], list[SourceProblem]]: ...

    def refresh(self) -> None: ...
