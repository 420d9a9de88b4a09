"""The sources that feed registries: component entry points and hook plugins.

Both read the one shared scan of installed entry points
(:mod:`codex_ml.plugins.discovery`) and honour the autoload switch and block
list (:mod:`codex_ml.plugins.policy`). Nothing here imports a component, and
pluggy is imported only when a hook plugin is installed (or asked for).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from codex_ml.registry.errors import RegistryError
from codex_ml.registry.providers import (
    SOURCE_BUILTIN,
    SOURCE_ENTRY_POINT,
    SOURCE_PLUGIN,
    Provider,
    SourceProblem,
)

TYPE_CHECKING = False  # typing is not imported on the listing path (~2 ms per process)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any

__all__ = ["EntryPointSource", "PluginSource", "UnreadableEntryPoints"]


class UnreadableEntryPoints(ValueError):
    """An installed distribution's ``entry_points.txt`` could not be read (it is not UTF-8)."""


class EntryPointSource:
    """One entry point per component: its name is the key, its value the factory."""

    def __init__(self, group: str) -> None:
        self.group = group

    def provide(self, kind: str) -> tuple[list[Provider], list[SourceProblem]]:
        from codex_ml.plugins.discovery import installed_entry_points
        from codex_ml.plugins.policy import loadable, reportable

        scan = installed_entry_points()
        # A provider with a target and no loader imports the target on first use.
        providers = [
            Provider(
                record.name,
                kind,
                SOURCE_ENTRY_POINT,
                target=record.value,
                plugin=record.name,
                distribution=record.distribution,
                version=record.version,
            )
            for record in loadable(scan.group(self.group))
        ]
        # A distribution whose entry points could not be read may have meant any kind.
        problems = [
            SourceProblem(message, UnreadableEntryPoints(message))
            for message in reportable(scan.faults)
        ]
        return providers, problems

    def refresh(self) -> None:
        """Nothing is cached here: the shared scan is refreshed by ``Registry.reload``."""


class PluginSource:
    """The hook plugins, loaded once through pluggy and shared by every registry.

    ``builtins`` returns the built-in plugins (name -> plugin object); it is
    called when the plugin manager is first built, so importing the facade
    imports no plugin. ``builtin_tables`` returns what the same plugins
    provide as plain tables (name -> kind -> key -> ``"module:attr"``): while
    no third-party hook plugin is installed, the tables answer and pluggy is
    not imported at all (about 10 ms of every listing process). Both give the
    same providers; once the plugin manager is built, it answers.
    """

    def __init__(
        self,
        builtins: Callable[[], Mapping[str, object]],
        builtin_tables: Callable[[], Mapping[str, Mapping[str, Mapping[str, str]]]] | None = None,
    ) -> None:
        self._builtins = builtins
        self._builtin_tables = builtin_tables
        self._host: Any = None
        self._lock = threading.Lock()
        self._thread = threading.local()  # .loading: this thread is running plugin code

    def host(self) -> Any:
        """The :class:`~codex_ml.plugins.manager.PluginHost`, built on first use."""
        host = self._host
        if host is None:
            with self._running_plugin_code(), self._lock:
                if self._host is None:
                    from codex_ml.plugins.manager import PluginHost

                    self._host = PluginHost.from_environment(self._builtins())
                host = self._host
        return host

    def provide(self, kind: str) -> tuple[list[Provider], list[SourceProblem]]:
        if self._host is None and self._builtin_tables is not None and not _hook_plugins_to_load():
            return self._table_providers(kind), []
        host = self.host()
        with self._running_plugin_code():
            provided, failures = host.provided(kind)
        problems = [SourceProblem(failure.message, failure.error) for failure in failures]
        return [_provider(kind, item) for item in provided], problems

    def _table_providers(self, kind: str) -> list[Provider]:
        """The built-in plugins' entries for ``kind``, as the plugin manager would give them."""
        from codex_ml._version import __version__
        from codex_ml.plugins.kinds import DISTRIBUTION_NAME

        assert self._builtin_tables is not None
        return [
            Provider(
                key,
                kind,
                SOURCE_BUILTIN,
                target=target,
                plugin=name,
                distribution=DISTRIBUTION_NAME,
                version=__version__,
            )
            for name, table in self._builtin_tables().items()
            for key, target in table.get(kind, {}).items()
        ]

    def refresh(self) -> None:
        self._refuse_reentry()
        with self._lock:
            self._host = None

    @contextmanager
    def _running_plugin_code(self) -> Iterator[None]:
        """Plugin imports and hook calls happen inside this block (and under locks)."""
        self._refuse_reentry()
        self._thread.loading = True
        try:
            yield
        finally:
            self._thread.loading = False

    def _refuse_reentry(self) -> None:
        # A plugin that registers, looks up or reloads while its own module or hook
        # is running would wait forever on the loading that is running it.
        if getattr(self._thread, "loading", False):
            raise RegistryError(
                "a hook plugin used the codex_ml registries while plugins were being loaded "
                "(at import time or inside one of its hooks); the call would wait forever for "
                "itself. Return the factories from the plugin's codex_ml_register_* hooks "
                "instead of registering, looking up or reloading from plugin code."
            )


def _hook_plugins_to_load() -> bool:
    """Whether the environment has a third-party hook plugin that autoload would load."""
    from codex_ml.plugins.discovery import installed_entry_points
    from codex_ml.plugins.kinds import PLUGIN_GROUP
    from codex_ml.plugins.policy import loadable

    return bool(loadable(installed_entry_points().group(PLUGIN_GROUP)))


def _provider(kind: str, item: Any) -> Provider:
    """Turn one hook result (key -> factory, LazyFactory or junk) into a Provider."""
    from codex_ml.plugins.lazy import LazyFactory
    from codex_ml.registry.provenance import target_of

    info = item.plugin
    meta = dict(
        plugin=info.name,
        distribution=info.distribution,
        version=info.version,
    )
    source = SOURCE_BUILTIN if info.builtin else SOURCE_PLUGIN
    factory = item.factory
    if isinstance(factory, LazyFactory):
        return Provider(
            item.key, kind, source, loader=factory.resolve, target=factory.target, **meta
        )
    if callable(factory):
        return Provider(item.key, kind, source, factory=factory, target=target_of(factory), **meta)
    error = TypeError(
        f"{info.describe()} gave {type(factory).__name__} {factory!r} for {kind} "
        f"{item.key!r}; a registry entry must be a callable factory"
    )
    return Provider(item.key, kind, source, error=error, target=repr(factory), **meta)
