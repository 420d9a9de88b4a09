"""What a source offers a registry: one candidate provider per key, and faults of its own.

A :class:`Provider` is a factory, or how to import one, together with where it
came from (``SOURCE_*``, plugin, distribution, version). Loading it is its own
business: a lazy provider imports its target once, times the import, and turns
any failure into :class:`~codex_ml.registry.errors.RegistryLoadError`, which it
keeps until the registry reloads. A :class:`SourceProblem` is a fault that
belongs to no single key. Sources build these (:mod:`codex_ml.registry.sources`)
and the :class:`~codex_ml.registry.base.Registry` keeps them.
"""

from __future__ import annotations

import time

from codex_ml.registry.errors import RegistryLoadError, RegistryMissingExtraError

TYPE_CHECKING = False  # typing is not imported on the listing path (~2 ms per process)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

__all__ = [
    "SOURCE_BUILTIN",
    "SOURCE_ENTRY_POINT",
    "SOURCE_IN_PROCESS",
    "SOURCE_PLUGIN",
    "Provider",
    "SourceProblem",
]

SOURCE_BUILTIN = "builtin"
SOURCE_PLUGIN = "plugin"
SOURCE_ENTRY_POINT = "entry-point"
SOURCE_IN_PROCESS = "in-process"

_MISSING: Any = object()


class SourceProblem:
    """A fault a source found that belongs to no single key (a plugin that failed, say)."""

    __slots__ = ("error", "message")

    message: str
    error: BaseException

    def __init__(self, message: str, error: BaseException) -> None:
        self.message = message
        self.error = error

    def __repr__(self) -> str:
        return f"SourceProblem({self.message!r})"


class Provider:
    """One candidate for a key: a factory, or how to import it, and its provenance.

    A lazy provider has a ``loader``, or only a ``target`` (``"module:attr"``),
    which is then imported on first use. Discovery builds one per installed
    entry point, so building one does as little as it can.
    """

    __slots__ = (
        "_error",
        "_factory",
        "_loader",
        "distribution",
        "key",
        "kind",
        "load_seconds",
        "plugin",
        "raw_key",
        "source",
        "target",
        "version",
    )

    raw_key: Any  # as the source gave it; ``key`` is its normalised form
    key: str
    kind: str
    source: str
    target: str | None
    plugin: str | None
    distribution: str | None
    version: str | None
    load_seconds: float | None

    def __init__(
        self,
        raw_key: Any,
        kind: str,
        source: str,
        *,
        factory: Any = _MISSING,
        loader: Callable[[], Any] | None = None,
        error: BaseException | None = None,
        target: str | None = None,
        plugin: str | None = None,
        distribution: str | None = None,
        version: str | None = None,
    ) -> None:
        self.raw_key = raw_key
        self.key = raw_key if isinstance(raw_key, str) else ""
        self.kind = kind
        self.source = source
        self.target = target
        self.plugin = plugin
        self.distribution = distribution
        self.version = version
        self._factory = factory
        self._loader = loader
        self._error = error
        #: How long the import of a lazy entry took (None until it ran).
        self.load_seconds = None

    @property
    def status(self) -> str:
        """``loaded``, ``lazy`` (not imported yet) or ``failed``."""
        if self._factory is not _MISSING:
            return "loaded"
        return "failed" if self._error is not None else "lazy"

    @property
    def error(self) -> BaseException | None:
        return self._error

    @property
    def loaded_factory(self) -> Any:
        """The factory if it was given or has been imported, else None; never imports."""
        factory = self._factory
        return None if factory is _MISSING else factory

    def is_object(self, obj: Any) -> bool:
        """Whether this provider stands for ``obj`` (the same object, or its import path)."""
        if self._factory is not _MISSING:
            return self._factory is obj
        from codex_ml.registry.provenance import target_of

        return self.target == target_of(obj)

    def same_as(self, other: Provider) -> bool:
        if self._factory is not _MISSING and other._factory is not _MISSING:
            return self._factory is other._factory
        return self.target is not None and self.target == other.target

    def label(self) -> str:
        """One phrase naming this provider, for error messages and ``plugins doctor``."""
        where = {
            SOURCE_BUILTIN: "the built-in catalogue",
            SOURCE_PLUGIN: f"hook plugin {self.plugin!r}",
            SOURCE_ENTRY_POINT: f"entry point {self.plugin!r} (group codex_ml.{self.kind}s)",
            SOURCE_IN_PROCESS: "an in-process registration",
        }.get(self.source, self.source)
        details = [self.target or "?"]
        if self.distribution:
            details.append(f"{self.distribution} {self.version or ''}".strip())
        if self.raw_key != self.key:
            details.append(f"given as {self.raw_key!r}")
        return f"{where} ({', '.join(details)})"

    def load(self) -> Any:
        """The factory, importing it on first use; :class:`RegistryLoadError` if that fails."""
        factory = self._factory
        if factory is not _MISSING:
            return factory
        from codex_ml.plugins.guard import describe_error
        from codex_ml.registry import loading

        try:
            with loading.turn(self):
                if self._factory is _MISSING and self._error is None:
                    self._load_once()
        except loading.LoadCycle as cycle:
            raise self._cycle_error(cycle.chain) from None
        if self._factory is not _MISSING:
            return self._factory
        from codex_ml.plugins.discovery import undecodable_hint

        error = self._error
        if self.source == SOURCE_BUILTIN:
            from codex_ml.extras import install_hint, missing_extra

            missing = missing_extra(error) if error is not None else None
            if missing is not None:  # an install step, not a broken entry
                raise RegistryMissingExtraError(
                    f"cannot load {self.kind} {self.key!r} from the built-in catalogue: "
                    f"{install_hint(*missing)}.",
                    kind=self.kind,
                    key=self.key,
                    module=missing[0],
                    extra=missing[1],
                ) from error
        raise RegistryLoadError(
            f"could not load {self.kind} {self.key!r} from {self.label()}: "
            f"{describe_error(error)}.{undecodable_hint(error)} Fix or uninstall the "
            f"distribution that provides it, block it with CODEX_ML_BLOCK_PLUGINS, then call "
            f"reload() (or start a new process).",
            kind=self.kind,
            key=self.key,
        ) from error

    def _load_once(self) -> None:
        from codex_ml.plugins.guard import guarded

        started = time.perf_counter()
        obj, error = guarded(self._import)  # third-party import-time faults of any kind
        if error is not None:
            self._error = error
        elif callable(obj):
            self._factory = obj
        else:
            self._error = TypeError(
                f"{self.target} is a {type(obj).__name__}, not a callable factory"
            )
        self.load_seconds = time.perf_counter() - started

    def _cycle_error(self, chain: Sequence[Provider]) -> RegistryLoadError:
        cycle = " -> ".join(f"{p.kind} {p.key!r}" for p in chain)
        itself = "itself" if len(chain) == 2 else "a key whose import leads back to it"
        return RegistryLoadError(
            f"could not load {self.kind} {self.key!r} from {self.label()}: it asked for "
            f"{itself} while it was being imported, an import cycle ({cycle}) that would "
            f"wait for ever. Look keys up inside the factory, not at import time, or fix or "
            f"uninstall the distribution that provides it.",
            kind=self.kind,
            key=self.key,
        )

    def _import(self) -> Any:
        if self._loader is not None:
            return self._loader()
        if self.target is None:
            return _MISSING
        from codex_ml.plugins.lazy import load_target

        return load_target(self.target)
