"""The Registry: a keyed, thread-safe table of factories that knows where each came from.

Entries come from *sources* (the plugin manager's hooks, a component
entry-point group), discovered lazily on first use, and from in-process
``register`` calls, which take precedence. A registry stores factories:
``get`` returns one without calling it.

Promises kept here, once, for every source alike:

- keys are normalised (NFKC, strip, lower case) and must be non-empty strings
  of visible characters (:mod:`codex_ml.registry.keys`);
- collisions are never silent: an in-process ``register`` of a taken key
  raises :class:`RegistryConflictError` unless ``override=True``, and a key
  that two discovered providers give is listed but ambiguous to use;
- a lazy entry is imported exactly once, even under concurrent ``get``, and an
  entry whose import asks for itself is a :class:`RegistryLoadError`, not a hang;
- a broken entry raises :class:`RegistryLoadError` on use (cached until
  ``reload()``) and never disturbs the others; "broken" includes any
  ``BaseException`` its import raises that no signal raised (``SystemExit``).

This module imports nothing of pluggy and no source; the facade in ``__init__``
joins them. A source is any object with ``provide`` and ``refresh``
(:class:`codex_ml.registry.protocols.Source`) that gives
:class:`~codex_ml.registry.providers.Provider` objects;
:class:`~codex_ml.registry.entries.EntryInfo` is what ``describe`` returns.
"""

from __future__ import annotations

import gc
import threading
import weakref
from contextlib import contextmanager

from codex_ml.registry.entries import EntryInfo
from codex_ml.registry.errors import (
    RegistryConflictError,
    RegistryNotFoundError,
    RegistryUnavailableError,
)
from codex_ml.registry.keys import normalize_key
from codex_ml.registry.providers import (
    SOURCE_BUILTIN,
    SOURCE_ENTRY_POINT,
    SOURCE_IN_PROCESS,
    SOURCE_PLUGIN,
    Provider,
    SourceProblem,
)

TYPE_CHECKING = False  # typing is not imported on the listing path (~2 ms per process)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any, TypeVar

    from codex_ml.registry.protocols import Source

    F = TypeVar("F", bound=Callable[..., Any])

# EntryInfo and the provider types have modules of their own; they stay importable from here.
__all__ = [
    "SOURCE_BUILTIN",
    "SOURCE_ENTRY_POINT",
    "SOURCE_IN_PROCESS",
    "SOURCE_PLUGIN",
    "EntryInfo",
    "Provider",
    "Registry",
    "SourceProblem",
]

#: Raw names remembered by the lookup fast path; enough for any real program.
_HOT_CACHE_LIMIT = 1024


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while discovery builds its objects.

    A listing builds an object per installed entry point (and the first one
    reads the whole discovery index); the collector would walk them all again
    and again and free nothing: a third of the listing time at 10,000
    distributions. Left alone when the caller has already disabled it.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


#: Every live registry, so that ``reload()`` on one refreshes process-wide discovery for all.
_REGISTRIES: weakref.WeakSet[Registry] = weakref.WeakSet()


class Registry:
    """A keyed table of factories for one component kind.

    ``sources`` give the discovered entries (the plugin manager's hook results,
    a component entry-point group's entries). ``entry_point_group`` names the
    group this kind is published under; the registry does not read it itself:
    the facade (:mod:`codex_ml.registry`) gives each registry an
    :class:`~codex_ml.registry.sources.EntryPointSource` for it.
    """

    def __init__(
        self,
        kind: str,
        *,
        entry_point_group: str | None = None,
        sources: Sequence[Source] = (),
    ) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._sources: list[Source] = list(sources)
        self._lock = threading.RLock()
        self._local: dict[str, Provider] = {}
        # Keys with temporary() blocks open: what the key was before the first of them,
        # and their providers, oldest first (the newest is the one in _local).
        self._layers: dict[str, tuple[Provider | None, list[Provider]]] = {}
        self._discovered: dict[str, list[Provider]] | None = None
        self._problems: list[SourceProblem] = []
        # Raw name -> factory for loaded entries: the whole cost of a hot `get`.
        self._hot: dict[str, Any] = {}
        self._generation = 0
        self._reloads = 0  # a discovery that started before a reload is not kept
        _REGISTRIES.add(self)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, entry_point_group={self.entry_point_group!r})"

    # -- keys --------------------------------------------------------------------------------------

    def normalize(self, name: Any) -> str:
        """The canonical form of a key: NFKC, stripped, lower case, visible characters only."""
        if not isinstance(name, str):
            raise TypeError(
                f"{self.kind} registry keys must be strings, got {type(name).__name__} {name!r}"
            )
        try:
            return normalize_key(name)
        except ValueError as exc:
            raise ValueError(f"{self.kind} registry {exc}, got {name!r}") from None

    # -- discovery ---------------------------------------------------------------------------------

    def _ensure_discovered(self) -> dict[str, list[Provider]]:
        found = self._discovered
        if found is None:
            # Sources run plugin code (imports, hooks), which may use a registry itself,
            # from this thread or another: no lock is held while they run, or two threads
            # could each wait for the other for ever. Threads that discover at the same
            # time each do the (cheap) work, and all of them use the first result kept.
            reloads = self._reloads
            with _gc_paused():
                discovered, problems = self._discover()
            with self._lock:
                if self._discovered is None and reloads == self._reloads:
                    self._discovered, self._problems = discovered, problems
                found = discovered if self._discovered is None else self._discovered
        return found

    def _discover(self) -> tuple[dict[str, list[Provider]], list[SourceProblem]]:
        grouped: dict[str, list[Provider]] = {}
        problems: list[SourceProblem] = []
        for source in self._sources:
            providers, source_problems = source.provide(self.kind)
            problems.extend(source_problems)
            for provider in providers:
                try:
                    provider.key = self.normalize(provider.raw_key)
                except (TypeError, ValueError) as exc:
                    problems.append(SourceProblem(f"{provider.label()} gave a bad key: {exc}", exc))
                    continue
                same_key = grouped.get(provider.key)
                if same_key is None:  # the common case, kept cheap: thousands of keys per listing
                    grouped[provider.key] = [provider]
                elif not any(existing.same_as(provider) for existing in same_key):
                    same_key.append(provider)
        return grouped, problems

    def problems(self) -> list[SourceProblem]:
        """Faults found while discovering this kind (failed plugins, bad keys)."""
        self._ensure_discovered()
        return list(self._problems)

    def _invalidate(self) -> None:
        """Drop the fast-path cache; call with the lock held."""
        self._generation += 1
        self._hot = {}

    def _mark_stale(self) -> None:
        with self._lock:
            self._reloads += 1
            self._discovered = None
            self._problems = []
            self._invalidate()

    def reload(self) -> None:
        """Rescan entry points and plugins (process-wide) and retry failed loads.

        In-process registrations are kept. Every registry sees the new scan.
        """
        from codex_ml.plugins.discovery import rescan

        rescan()
        for registry in list(_REGISTRIES):
            for source in registry._sources:
                source.refresh()
            registry._mark_stale()

    # -- lookup ------------------------------------------------------------------------------------

    def get(self, name: str) -> Any:
        """The factory registered under ``name`` (not called)."""
        try:
            return self._hot[name]
        except (KeyError, TypeError):
            return self._resolve(name)

    def _resolve(self, name: Any) -> Any:
        key = self.normalize(name)
        generation = self._generation
        factory = self._provider(key).load()
        with self._lock:
            if generation == self._generation and len(self._hot) < _HOT_CACHE_LIMIT:
                self._hot[name] = factory
        return factory

    def _provider(self, key: str) -> Provider:
        local = self._local.get(key)
        if local is not None:
            return local
        providers = self._ensure_discovered().get(key)
        if not providers:
            raise self._not_found(key)
        if len(providers) > 1:
            raise self._ambiguous(key, providers)
        return providers[0]

    def __contains__(self, name: object) -> bool:
        try:
            key = self.normalize(name)
        except (TypeError, ValueError):
            return False
        return key in self._local or key in self._ensure_discovered()

    def list(self) -> list[str]:
        """Every key, sorted; listing never imports a lazy entry."""
        return sorted(self._local.keys() | self._ensure_discovered().keys())

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self.list())

    def describe(self, name: str) -> EntryInfo:
        """Provenance of ``name``; an ambiguous key describes its first provider and lists all."""
        key = self.normalize(name)
        local = self._local.get(key)
        if local is not None:
            return EntryInfo(local, [local])
        providers = self._ensure_discovered().get(key)
        if not providers:
            raise self._not_found(key)
        return EntryInfo(providers[0], providers)

    def entries(self) -> list[EntryInfo]:
        """``describe`` of every key, sorted by key."""
        return [self.describe(key) for key in self.list()]

    def ambiguous(self) -> dict[str, list[str]]:
        """Keys that several discovered providers give (and no in-process entry settles)."""
        return {
            key: [p.label() for p in providers]
            for key, providers in self._ensure_discovered().items()
            if len(providers) > 1 and key not in self._local
        }

    # -- registration ------------------------------------------------------------------------------

    def register(self, name: str, obj: Any = None, *, override: bool = False) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator that does.

        A taken key raises :class:`RegistryConflictError` unless ``override=True``;
        registering the very same object again is a no-op.
        """
        if obj is None:
            self.normalize(name)  # a bad key fails at decoration time, not later

            def decorator(target: F) -> F:
                self.register(name, target, override=override)
                return target

            return decorator
        self._add(name, obj, override=override)
        return obj

    def _add(self, name: str, obj: Any, *, override: bool, layer: bool = False) -> Provider | None:
        """Register ``obj``; return its provider (None if a no-op).

        ``layer=True`` adds it as a temporary layer over the key (see :meth:`temporary`);
        otherwise it settles the key, and the temporary blocks open on it undo nothing.
        """
        key = self.normalize(name)
        if not callable(obj):
            raise TypeError(
                f"{self.kind} {key!r}: a registry entry must be a callable factory, "
                f"got {type(obj).__name__} {obj!r}"
            )
        from codex_ml.registry.provenance import target_of

        discovered = self._ensure_discovered()  # before the lock: it may run plugin code
        with self._lock:
            local = self._local.get(key)
            taken = [local] if local is not None else list(discovered.get(key, ()))
            if taken and not override:
                if len(taken) == 1 and taken[0].is_object(obj):
                    return None
                raise self._conflict(key, taken, obj)
            if getattr(type(obj), "__codex_ml_lazy__", False):  # a LazyFactory: stay lazy
                added = Provider(
                    name, self.kind, SOURCE_IN_PROCESS, loader=obj.resolve, target=obj.target
                )
            else:
                added = Provider(
                    name, self.kind, SOURCE_IN_PROCESS, factory=obj, target=target_of(obj)
                )
            added.key = key
            if layer:
                self._layers.setdefault(key, (local, []))[1].append(added)
            else:
                self._layers.pop(key, None)
            self._local[key] = added
            self._invalidate()
        return added

    def unregister(self, name: str) -> None:
        """Remove an in-process registration (discovered entries come back into view)."""
        key = self.normalize(name)
        with self._lock:
            if key not in self._local:
                raise RegistryNotFoundError(
                    f"no in-process {self.kind} registration under {key!r} to remove; "
                    f"unregister only undoes register() (entries from plugins stay: block the "
                    f"plugin with CODEX_ML_BLOCK_PLUGINS instead).",
                    kind=self.kind,
                    key=key,
                )
            del self._local[key]
            self._layers.pop(key, None)
            self._invalidate()

    @contextmanager
    def isolated(self) -> Iterator[Registry]:
        """Undo every in-process registration made inside the block, on any exit.

        Meant for tests: it restores a snapshot, so it also undoes what other
        threads register meanwhile. Concurrent code uses :meth:`temporary`.
        """
        with self._lock:
            saved = dict(self._local)
            saved_layers = {key: (base, list(stack)) for key, (base, stack) in self._layers.items()}
        try:
            yield self
        finally:
            with self._lock:
                self._local = saved
                self._layers = saved_layers
                self._invalidate()

    @contextmanager
    def temporary(self, name: str, obj: Any, *, override: bool = False) -> Iterator[Any]:
        """Register ``obj`` for the duration of the block only.

        On exit only this key goes back to what it was, so registrations made
        meanwhile (by other threads, say) are kept. Blocks that overlap on one
        key (``override=True``) may end in any order: the key shows the newest
        block still open, and once all have ended it is what it was before the
        first. A ``register`` or ``unregister`` of the key inside a block settles
        it, and the blocks then leave it alone.
        """
        added = self._add(name, obj, override=override, layer=True)
        try:
            yield obj
        finally:
            if added is not None:
                self._remove_layer(added)

    def _remove_layer(self, added: Provider) -> None:
        with self._lock:
            base, stack = self._layers.get(added.key, (None, []))
            if not any(layer is added for layer in stack):
                return  # the key was settled, or restored by isolated(), inside the block
            stack[:] = [layer for layer in stack if layer is not added]
            if stack:
                self._local[added.key] = stack[-1]
            else:
                del self._layers[added.key]
                if base is None:
                    del self._local[added.key]
                else:
                    self._local[added.key] = base
            self._invalidate()

    # -- error messages ----------------------------------------------------------------------------

    def _not_found(self, key: str) -> RegistryNotFoundError:
        import difflib

        keys = self.list()
        close = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
        close += [k for k in keys if (key in k or k in key) and k not in close][: 3 - len(close)]
        message = f"no {self.kind} is registered under {key!r}."
        if close:
            message += f" Did you mean {', '.join(repr(k) for k in close)}?"
        message += f" Available {self.kind} keys: {', '.join(keys) or '(none)'}."
        problems = self._problems
        if problems:
            message += (
                f" {len(problems)} plugin fault(s) may explain it: "
                + "; ".join(p.message for p in problems)
                + ". Run `codex-ml plugins doctor` for details."
            )
            error = RegistryUnavailableError(message, kind=self.kind, key=key, suggestions=close)
            error.__cause__ = problems[0].error
            return error
        message += " Register it in-process or install a plugin that provides it."
        return RegistryNotFoundError(message, kind=self.kind, key=key, suggestions=close)

    def _ambiguous(self, key: str, providers: Sequence[Provider]) -> RegistryConflictError:
        labels = [p.label() for p in providers]
        # The built-in catalogue cannot be blocked, so only third-party names are offered.
        blockable = sorted(
            {p.distribution or p.plugin or "?" for p in providers if p.source != SOURCE_BUILTIN}
        )
        return RegistryConflictError(
            f"{self.kind} key {key!r} is ambiguous: it is provided by "
            + "; ".join(labels)
            + f". Block the ones you do not want (CODEX_ML_BLOCK_PLUGINS={','.join(blockable)} "
            f"blocks them all) or register the one you want explicitly with override=True.",
            kind=self.kind,
            key=key,
            providers=labels,
        )

    def _conflict(self, key: str, taken: Sequence[Provider], obj: Any) -> RegistryConflictError:
        from codex_ml.registry.provenance import distribution_of, target_of

        new = target_of(obj)
        dist = distribution_of(obj)
        new_label = f"{new} ({dist})" if dist else new
        labels = [p.label() for p in taken]
        return RegistryConflictError(
            f"cannot register {self.kind} {key!r} from {new_label}: the key is already taken by "
            + "; ".join(labels)
            + ". Pick another key, or pass override=True to replace it.",
            kind=self.kind,
            key=key,
            providers=[*labels, new_label],
        )
