"""The component registries, fed by the plugin manager and entry points.

For each kind (tokenizer, model, metric, data_loader, trainer, reward_model,
callback, optimizer, scheduler, adapter)::

    <kind>_registry                      the Registry
    register_<kind>(name, obj=None, *, override=False)   decorator or direct call
    get_<kind>(name, **kwargs)           calls the factory, returns the component
    list_<kind>s()                       sorted keys, importing nothing

The built-in catalogue is registered explicitly as a plugin (and read as a
plain table while no other hook plugin is installed); third-party hook
plugins (group ``codex_ml.plugins``) and component entry points (groups
``codex_ml.<kind>s``) are discovered on first use. Importing this module
imports no plugin, no component, and none of torch, transformers or hydra.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager

from codex_ml.plugins.kinds import KINDS, kind_named
from codex_ml.registry.base import Registry
from codex_ml.registry.entries import EntryInfo
from codex_ml.registry.errors import (
    RegistryConflictError,
    RegistryError,
    RegistryLoadError,
    RegistryMissingExtraError,
    RegistryNotFoundError,
    RegistryUnavailableError,
)
from codex_ml.registry.sources import EntryPointSource, PluginSource

TYPE_CHECKING = False  # typing is not imported on the listing path (~2 ms per process)
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from typing import Any

    from codex_ml.protocols import Adapter, Metric, Model, RewardModel, Tokenizer, Trainer
    from codex_ml.registry.protocols import Get, ListKeys, Register

__all__ = [
    "EntryInfo",
    "Registry",
    "RegistryConflictError",
    "RegistryError",
    "RegistryLoadError",
    "RegistryMissingExtraError",
    "RegistryNotFoundError",
    "RegistryUnavailableError",
    "adapter_registry",
    "callback_registry",
    "data_loader_registry",
    "get_adapter",
    "get_callback",
    "get_data_loader",
    "get_metric",
    "get_model",
    "get_optimizer",
    "get_registry",
    "get_reward_model",
    "get_scheduler",
    "get_tokenizer",
    "get_trainer",
    "isolated",
    "list_adapters",
    "list_callbacks",
    "list_data_loaders",
    "list_metrics",
    "list_models",
    "list_optimizers",
    "list_reward_models",
    "list_schedulers",
    "list_tokenizers",
    "list_trainers",
    "metric_registry",
    "model_registry",
    "optimizer_registry",
    "plugin_source",
    "register_adapter",
    "register_callback",
    "register_data_loader",
    "register_metric",
    "register_model",
    "register_optimizer",
    "register_reward_model",
    "register_scheduler",
    "register_tokenizer",
    "register_trainer",
    "registries",
    "reload",
    "reward_model_registry",
    "scheduler_registry",
    "tokenizer_registry",
    "trainer_registry",
]


def _builtin_plugins() -> Mapping[str, object]:
    from codex_ml.catalogue import plugin as catalogue
    from codex_ml.catalogue.table import PLUGIN_NAME

    return {PLUGIN_NAME: catalogue}


def _builtin_tables() -> Mapping[str, Mapping[str, Mapping[str, str]]]:
    from codex_ml.catalogue.table import CATALOGUE, PLUGIN_NAME

    return {PLUGIN_NAME: CATALOGUE}


#: The hook plugins, shared by every registry below.
plugin_source: PluginSource = PluginSource(_builtin_plugins, _builtin_tables)

#: kind name -> Registry, one per row of the table of kinds: the hook plugins, then the
#: kind's own entry-point group.
registries: dict[str, Registry] = {
    kind.name: Registry(
        kind.name,
        entry_point_group=kind.entry_point_group,
        sources=[plugin_source, EntryPointSource(kind.entry_point_group)],
    )
    for kind in KINDS
}


def get_registry(kind: str) -> Registry:
    """The registry of a kind, by singular or plural name (``"metric"``, ``"metrics"``)."""
    return registries[kind_named(kind).name]


def _accessors(registry: Registry) -> tuple[Any, Any, ListKeys]:
    """The ``register_<kind>``, ``get_<kind>`` and ``list_<kind>s`` functions of a registry.

    Typed by the declarations below (:class:`~codex_ml.registry.protocols.Register`,
    :class:`~codex_ml.registry.protocols.Get`), which cost nothing at run time.
    """
    kind = registry.kind

    def register(name: str, obj: Any = None, *, override: bool = False) -> Any:
        return registry.register(name, obj, override=override)

    def get(name: str, config: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Any:
        factory = registry.get(name)
        if config is not None:  # the original codex-ml's get_model(name, cfg)
            from codex_ml.registry.legacy import build_from_config

            return build_from_config(kind, name, factory, config, kwargs)
        return factory(**kwargs)

    def list_keys() -> list[str]:
        return registry.list()

    register.__name__ = register.__qualname__ = f"register_{kind}"
    register.__doc__ = f"Register a {kind} factory under ``name`` (decorator or direct call)."
    get.__name__ = get.__qualname__ = f"get_{kind}"
    get.__doc__ = f"Build the {kind} registered under ``name`` by calling its factory with kwargs."
    list_keys.__name__ = list_keys.__qualname__ = f"list_{kind}s"
    list_keys.__doc__ = f"Every registered {kind} key, sorted, without importing any of them."
    return register, get, list_keys


tokenizer_registry: Registry = registries["tokenizer"]
model_registry: Registry = registries["model"]
metric_registry: Registry = registries["metric"]
data_loader_registry: Registry = registries["data_loader"]
trainer_registry: Registry = registries["trainer"]
reward_model_registry: Registry = registries["reward_model"]
callback_registry: Registry = registries["callback"]
optimizer_registry: Registry = registries["optimizer"]
scheduler_registry: Registry = registries["scheduler"]
adapter_registry: Registry = registries["adapter"]

# What each get_<kind> returns: the kind's protocol (codex_ml.protocols).
register_tokenizer: Register
get_tokenizer: Get[Tokenizer]
list_tokenizers: ListKeys
register_model: Register
get_model: Get[Model]
list_models: ListKeys
register_metric: Register
get_metric: Get[Metric]
list_metrics: ListKeys
register_data_loader: Register
get_data_loader: Get[Iterable[str]]
list_data_loaders: ListKeys
register_trainer: Register
get_trainer: Get[Trainer]
list_trainers: ListKeys
register_reward_model: Register
get_reward_model: Get[RewardModel]
list_reward_models: ListKeys
register_callback: Register
get_callback: Get[Any]  # an object with any of the on_* methods (codex_ml.plugins.lifecycle)
list_callbacks: ListKeys
register_optimizer: Register
get_optimizer: Get[Any]  # a torch.optim.Optimizer (the factory takes the parameters)
list_optimizers: ListKeys
register_scheduler: Register
get_scheduler: Get[Any]  # a function of the step that returns the learning rate
list_schedulers: ListKeys
register_adapter: Register
get_adapter: Get[Adapter]  # prepares a built model for training (codex_ml.protocols.Adapter)
list_adapters: ListKeys

register_tokenizer, get_tokenizer, list_tokenizers = _accessors(tokenizer_registry)
register_model, get_model, list_models = _accessors(model_registry)
register_metric, get_metric, list_metrics = _accessors(metric_registry)
register_data_loader, get_data_loader, list_data_loaders = _accessors(data_loader_registry)
register_trainer, get_trainer, list_trainers = _accessors(trainer_registry)
register_reward_model, get_reward_model, list_reward_models = _accessors(reward_model_registry)
register_callback, get_callback, list_callbacks = _accessors(callback_registry)
register_optimizer, get_optimizer, list_optimizers = _accessors(optimizer_registry)
register_scheduler, get_scheduler, list_schedulers = _accessors(scheduler_registry)
register_adapter, get_adapter, list_adapters = _accessors(adapter_registry)


def reload() -> None:
    """Rescan installed plugins and entry points for every registry; retry failed loads."""
    tokenizer_registry.reload()


@contextmanager
def isolated() -> Iterator[dict[str, Registry]]:
    """Undo, on exit, every in-process registration made in any registry inside the block."""
    with ExitStack() as stack:
        for registry in registries.values():
            stack.enter_context(registry.isolated())
        yield registries
