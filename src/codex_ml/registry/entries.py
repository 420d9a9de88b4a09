"""What ``Registry.describe`` returns: a snapshot of one key's provenance.

Kept apart from the registry and its providers: it only reads a provider, and
looks up the factory's file, line and docstring (:mod:`codex_ml.registry.provenance`)
on first access, without importing a lazy entry.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported on the listing path (~2 ms per process)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from codex_ml.registry.providers import Provider

__all__ = ["EntryInfo"]


class EntryInfo:
    """A snapshot of one key's provenance, as ``Registry.describe`` returns it.

    ``file``, ``line`` and ``doc`` are looked up on first access, without
    importing a lazy entry.
    """

    __slots__ = (
        "_factory",
        "_location",
        "distribution",
        "error",
        "key",
        "kind",
        "load_seconds",
        "plugin",
        "providers",
        "source",
        "status",
        "target",
        "version",
    )

    key: str
    kind: str
    source: str
    plugin: str | None
    distribution: str | None
    version: str | None
    target: str | None
    status: str
    providers: tuple[str, ...]
    error: BaseException | None
    load_seconds: float | None

    def __init__(self, provider: Provider, providers: Sequence[Provider]) -> None:
        self.key = provider.key
        self.kind = provider.kind
        self.source = provider.source
        self.plugin = provider.plugin
        self.distribution = provider.distribution
        self.version = provider.version
        self.target = provider.target
        self.status = "ambiguous" if len(providers) > 1 else provider.status
        self.providers = tuple(p.label() for p in providers)
        self.error = provider.error
        self.load_seconds = provider.load_seconds
        self._factory = provider.loaded_factory
        self._location: Any = None

    def _where(self) -> Any:
        if self._location is None:
            from codex_ml.registry import provenance

            if self._factory is not None:
                self._location = provenance.locate_object(self._factory)
            elif self.target:
                self._location = provenance.locate_target(self.target)
            else:
                self._location = provenance.Location()
        return self._location

    @property
    def file(self) -> str | None:
        return self._where().file

    @property
    def line(self) -> int | None:
        return self._where().line

    @property
    def doc(self) -> str | None:
        """The first line of the factory's docstring."""
        return self._where().doc

    def as_dict(self, *, location: bool = False) -> dict[str, Any]:
        """A JSON-ready mapping; ``location=True`` adds file, line and doc."""
        data: dict[str, Any] = {
            "key": self.key,
            "kind": self.kind,
            "source": self.source,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "version": self.version,
            "target": self.target,
            "status": self.status,
        }
        if len(self.providers) > 1:
            data["providers"] = list(self.providers)
        if self.error is not None:
            data["error"] = f"{type(self.error).__name__}: {self.error}"
        if location:
            data.update(file=self.file, line=self.line, doc=self.doc)
        return data

    def __repr__(self) -> str:
        return f"EntryInfo({self.kind}:{self.key}, source={self.source}, target={self.target})"
