"""The pluggy plugin manager, with provenance kept and failures returned as data.

:class:`PluginHost` registers the built-in plugins it is given, then the hook
plugins declared in the ``codex_ml.plugins`` entry-point group (from the shared
scan, never a rescan), validating each one on its own. It calls every hook
implementation separately, so each key it returns knows the plugin (and
distribution) that gave it; a plugin that fails to import, to validate, or in
its hook becomes a :class:`PluginFailure` and the other plugins carry on.
"Fails" means any ``BaseException`` a signal did not raise (``SystemExit`` at
import included): plugin code runs through :func:`~codex_ml.plugins.guard.guarded`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from codex_ml._version import __version__
from codex_ml.plugins import hookspecs
from codex_ml.plugins.discovery import EntryPointRecord, Scan, installed_entry_points
from codex_ml.plugins.guard import describe_error, guarded
from codex_ml.plugins.kinds import DISTRIBUTION_NAME, PLUGIN_GROUP, PROJECT_NAME, kind_named
from codex_ml.plugins.lazy import load_target
from codex_ml.plugins.policy import autoload_disabled, blocked_names, is_blocked

__all__ = [
    "CodexPluginManager",
    "PluginFailure",
    "PluginHost",
    "PluginInfo",
    "Provided",
]


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """Who a hook plugin is: its name and the distribution that installed it."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False

    def describe(self) -> str:
        if not self.distribution:
            return f"plugin {self.name!r}"
        dist = f"{self.distribution} {self.version}" if self.version else self.distribution
        return f"plugin {self.name!r} ({dist})"


@dataclass(frozen=True, slots=True)
class Provided:
    """One ``key -> factory`` pair as a hook implementation returned it."""

    kind: str
    key: Any
    factory: Any
    plugin: PluginInfo


@dataclass(frozen=True, slots=True)
class PluginFailure:
    """A plugin that could not take part, and why. ``kind`` is None for whole-plugin faults."""

    plugin: PluginInfo
    stage: str  # "import" | "validate" | "hook" | "result"
    error: BaseException
    kind: str | None = None

    @property
    def message(self) -> str:
        what = {
            "import": "failed to import",
            "validate": "failed validation",
            "hook": f"raised in its {self.kind} hook",
            "result": f"returned an invalid result from its {self.kind} hook",
        }[self.stage]
        return f"{self.plugin.describe()} {what}: {describe_error(self.error)}"


class CodexPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers which distribution installed each plugin.

    ``list_plugin_distinfo`` answers as pluggy's does for plugins it loaded
    itself, but from the shared scan, so no distribution is read twice.
    """

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.plugin_info: dict[str, PluginInfo] = {}

    def list_plugin_distinfo(self) -> list[tuple[object, Any]]:
        return [
            (self.get_plugin(info.name), info)
            for info in self.plugin_info.values()
            if info.distribution and self.get_plugin(info.name) is not None
        ]


@dataclass
class PluginHost:
    """Loads hook plugins once and answers, per kind, what they provide."""

    builtins: Mapping[str, object]
    scan: Scan | None = None
    autoload: bool = True
    blocked: frozenset[str] = frozenset()
    manager: CodexPluginManager = field(init=False)
    failures: list[PluginFailure] = field(init=False, default_factory=list)
    #: plugin name -> seconds its module took to import (``plugins doctor`` names slow ones)
    import_seconds: dict[str, float] = field(init=False, default_factory=dict)
    _by_kind: dict[str, tuple[list[Provided], list[PluginFailure]]] = field(
        init=False, default_factory=dict
    )
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    @classmethod
    def from_environment(cls, builtins: Mapping[str, object]) -> PluginHost:
        """A host set up as the environment says (autoload switch, block list)."""
        autoload = not autoload_disabled()
        return cls(
            builtins,
            scan=installed_entry_points() if autoload else None,
            autoload=autoload,
            blocked=blocked_names(),
        )

    def __post_init__(self) -> None:
        self.manager = CodexPluginManager()
        for name, plugin in self.builtins.items():
            module = getattr(plugin, "__name__", type(plugin).__name__)
            info = PluginInfo(name, module, DISTRIBUTION_NAME, __version__, builtin=True)
            self._register(info, plugin)
        if self.autoload and self.scan is not None:
            for record in self.scan.group(PLUGIN_GROUP):
                if is_blocked(record, self.blocked):
                    self.manager.set_blocked(record.name)
                    continue
                self._load_entry_point(record)

    # -- loading -------------------------------------------------------------------------------

    def _load_entry_point(self, record: EntryPointRecord) -> None:
        info = PluginInfo(record.name, record.module, record.distribution, record.version)
        if self.manager.has_plugin(record.name):
            # Two distributions declaring one plugin name: the first on sys.path wins,
            # and the second is reported rather than silently dropped.
            error = ValueError(
                f"a plugin named {record.name!r} is already registered by "
                f"{self.manager.plugin_info[record.name].describe()}"
            )
            self.failures.append(PluginFailure(info, "validate", error))
            return
        started = time.perf_counter()
        plugin, error = guarded(load_target, record.value)
        self.import_seconds[record.name] = time.perf_counter() - started
        if error is not None:  # any import-time fault of a third-party module, SystemExit too
            self.failures.append(PluginFailure(info, "import", error))
            return
        self._register(info, plugin)

    def _register(self, info: PluginInfo, plugin: object) -> None:
        other = self.manager.get_name(plugin)
        if other is not None:
            # pluggy would refuse it too, and then print every registered plugin.
            error = ValueError(
                f"its module {info.module!r} is already registered as "
                f"{self.manager.plugin_info[other].describe()}; declare it under one name"
            )
            self.failures.append(PluginFailure(info, "validate", error))
            return
        # pluggy reads the plugin's attributes, which may run its code (a module __getattr__).
        _, error = guarded(self._validate, info.name, plugin)
        if error is not None:  # pluggy.PluginValidationError, or a duplicate object
            if self.manager.has_plugin(info.name):
                self.manager.unregister(name=info.name)
            self.failures.append(PluginFailure(info, "validate", error))
            return
        self.manager.plugin_info[info.name] = info

    def _validate(self, name: str, plugin: object) -> None:
        self.manager.register(plugin, name=name)
        self.manager.check_pending()

    # -- answering -----------------------------------------------------------------------------

    def provided(self, kind: str) -> tuple[list[Provided], list[PluginFailure]]:
        """Every key -> factory pair given for ``kind``, and the failures relevant to it."""
        cached = self._by_kind.get(kind)
        if cached is None:
            with self._lock:
                cached = self._by_kind.get(kind)
                if cached is None:
                    cached = self._call_hooks(kind)
                    self._by_kind[kind] = cached
        return cached

    def _call_hooks(self, kind: str) -> tuple[list[Provided], list[PluginFailure]]:
        hook = getattr(self.manager.hook, kind_named(kind).hook_name)
        provided: list[Provided] = []
        failures = list(self.failures)  # import/validation faults may concern any kind
        # get_hookimpls() is in registration order (pluggy *calls* them in reverse):
        # report in load order, so the built-in catalogue and the first plugin come first.
        for impl in hook.get_hookimpls():
            info = self.manager.plugin_info[impl.plugin_name]
            result, error = guarded(impl.function)
            if error is not None:
                failures.append(PluginFailure(info, "hook", error, kind))
                continue
            pairs, error = guarded(_pairs, result)  # a mapping's items() is plugin code too
            if error is not None:
                failures.append(PluginFailure(info, "result", error, kind))
                continue
            provided.extend(Provided(kind, key, factory, info) for key, factory in pairs)
        return provided, failures

    def plugins(self) -> Iterable[PluginInfo]:
        """The plugins registered, in load order."""
        return list(self.manager.plugin_info.values())

    def implementations(self, hook_name: str) -> list[tuple[PluginInfo, Any]]:
        """``(plugin, pluggy HookImpl)`` for each implementation of a hook, in load order.

        For hooks codex-ml calls one implementation at a time (the lifecycle
        hooks), so that each fault is one plugin's and the others still run.
        """
        hook = getattr(self.manager.hook, hook_name)
        return [(self.manager.plugin_info[impl.plugin_name], impl) for impl in hook.get_hookimpls()]


def _pairs(result: object) -> list[tuple[Any, Any]]:
    """The ``(key, factory)`` pairs of what a registration hook returned (None: none)."""
    if result is None:
        return []
    if not isinstance(result, Mapping):
        raise TypeError(
            f"expected a mapping of key -> factory (or None), got {type(result).__name__}"
        )
    return list(result.items())
