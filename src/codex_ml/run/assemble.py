"""Turn a composed config into components: check everything first, then build.

Every fragment is checked against its factory's signature before the first
component is built, so a typo in ``training`` fails in a second, not after a
model has been loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from codex_ml.config import (
    ComponentSpec,
    ConfigError,
    build_component,
    check_spec,
    reject_instantiation_keys,
    spec_from,
)
from codex_ml.run.prepare import EVAL_PATH_KEY, STORE_KEY, DataSource

#: config group -> registry kind, for the groups that name one component each.
GROUP_KINDS = {
    "tokenizer": "tokenizer",
    "model": "model",
    "data": "data_loader",
    "training": "trainer",
    "reward_model": "reward_model",
    "optimizer": "optimizer",
    "scheduler": "scheduler",
    "adapter": "adapter",
}
#: The groups that give the trainer a factory of their own (``optimizer=``, ``scheduler=``).
TRAINING_PARTS = ("optimizer", "scheduler")
#: Groups a run may leave out: the trainer's defaults apply; without an adapter the whole
#: model trains.
OPTIONAL_GROUPS = (*TRAINING_PARTS, "adapter")
#: config group -> registry kind, for the groups that name several components (alias -> spec).
LIST_GROUPS = {"metrics": "metric", "callbacks": "callback"}
#: Keys in a fragment that codex-ml reads itself rather than passing to the factory.
RESERVED: dict[str, tuple[str, ...]] = {
    "training": ("resume",),
    "metrics": ("input",),
    "data": (STORE_KEY, EVAL_PATH_KEY),
}
#: Factory parameters codex-ml (or the trainer) always sets itself, and where from; never
#: from a config. The optimizer and scheduler take the peak rate and length of the run.
INTERNAL_PARAMETERS: dict[str, dict[str, str]] = {
    "tokenizer": {"corpus": "the run's training split (a tokenizer that trains)"},
    "training": {
        "output_dir": "hydra.run.dir",
        "resume_from": "training.resume",
        "optimizer": "the optimizer group (optimizer=<preset>)",
        "scheduler": "the scheduler group (scheduler=<preset>)",
    },
    "optimizer": {"params": "the model's parameters", "lr": "training.lr"},
    "scheduler": {
        "lr": "training.lr",
        "max_steps": "training.max_steps",
        "warmup_steps": "training.warmup_steps",
    },
}
#: What a metric scores, for the catalogue's metrics (others say so with `input:`).
METRIC_INPUTS = ("token-nll", "token-ids", "generations", "references")


@dataclass(frozen=True)
class MetricSpec:
    """One configured metric: its spec and the input it scores."""

    alias: str
    spec: ComponentSpec
    input: str


@dataclass
class Plan:
    """The checked specs of a run; nothing built yet, factories imported when first used."""

    config: dict[str, Any]
    specs: dict[str, ComponentSpec]  # config group -> its component
    metrics: list[MetricSpec] = field(default_factory=list)
    callbacks: dict[str, ComponentSpec] = field(default_factory=dict)  # alias -> callback
    #: ``where`` (``model``, ``metrics.ppl``...) -> factory, for those imported so far.
    factories: dict[str, Any] = field(default_factory=dict)

    @property
    def run(self) -> dict[str, Any]:
        return self.config.get("run", {})

    def components(self) -> list[ComponentSpec]:
        """Every component of the run: the groups', the metrics' and the callbacks'."""
        return [*self.specs.values(), *(m.spec for m in self.metrics), *self.callbacks.values()]

    def factory(self, where: str) -> Any:
        """The factory of the component at ``where`` (a group, ``metrics.<alias>``...)."""
        if where not in self.factories:
            specs = {spec.where: spec for spec in self.components()}
            self.factories[where] = load_factory(specs[where])
        return self.factories[where]

    def load_factories(self) -> None:
        """Import every factory now: a missing extra is named before anything is built."""
        for spec in self.components():
            self.factory(spec.where)


def load_factory(spec: ComponentSpec) -> Any:
    """The factory a checked spec names, imported; a broken entry is a ConfigError at its key."""
    from codex_ml.registry import RegistryError, get_registry

    try:
        return get_registry(spec.kind).get(spec.name)
    except RegistryError as exc:
        raise ConfigError(f"{spec.where}.name: {exc}", where=f"{spec.where}.name") from exc


def resolve(cfg: Any) -> dict[str, Any]:
    """A composed OmegaConf config as plain data, interpolations resolved."""
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    from codex_ml.run.resolvers import register_resolvers

    register_resolvers()
    if "hydra" in cfg:  # Hydra's own node is not part of the run's config
        cfg = cfg.copy()
        with open_dict(cfg):
            del cfg["hydra"]
    try:
        data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        where = getattr(exc, "full_key", None) or "config"
        raise ConfigError(
            _required_message(cfg, where)
            or f"{where}: {str(exc).splitlines()[0]}. Set it on the command line ({where}=...).",
            where=where,
        ) from None
    assert isinstance(data, dict)
    data.pop("hydra", None)
    reject_instantiation_keys(data)
    return data


def _required_message(cfg: Any, where: str) -> str | None:
    """``data.path is required by data_loader 'x'`` for a component parameter left ``???``."""
    from omegaconf import OmegaConf

    component, _, param = where.rpartition(".")
    group = component.split(".")[0]
    kind = GROUP_KINDS.get(group) or LIST_GROUPS.get(group)
    if (
        kind is None
        or not param
        or not OmegaConf.is_missing(OmegaConf.select(cfg, component), param)
    ):
        return None
    key = OmegaConf.select(cfg, f"{component}.name", default=None)
    who = f"{kind} {key!r}" if isinstance(key, str) else f"the {component} preset"
    return f"{where} is required by {who}; set it on the command line ({where}=...)."


def plan(
    config: Mapping[str, Any], groups: tuple[str, ...] = tuple(GROUP_KINDS), *, load: bool = True
) -> Plan:
    """Check the given groups (and the metrics and callbacks) of a resolved config.

    With ``load=False`` a factory is checked from its source where it can be,
    without importing it (or torch), and imported when the plan builds it.
    """
    result = Plan(dict(config), {})

    def check(spec: ComponentSpec, **how: Any) -> None:
        factory = check_spec(spec, load=load, **how)
        if factory is not None:
            result.factories[spec.where] = factory

    for group in groups:
        if group in OPTIONAL_GROUPS and config.get(group) is None:
            continue
        if group not in config:
            raise ConfigError(
                f"{group}: missing; choose a preset ({group}=offline/...).", where=group
            )
        spec = spec_from(config[group], GROUP_KINDS[group], group, reserved=RESERVED.get(group, ()))
        result.specs[group] = spec
        provided = ("vocab_size",) if group == "model" else ()
        check(spec, provided=provided, internal=INTERNAL_PARAMETERS.get(group, ()))
    for alias, node in (config.get("metrics") or {}).items():
        where = f"metrics.{alias}"
        spec = spec_from(node, "metric", where, reserved=RESERVED["metrics"])
        metric_input = node.get("input", "references")
        if metric_input not in METRIC_INPUTS:
            raise ConfigError(
                f"{where}.input: {metric_input!r} is not one of {', '.join(METRIC_INPUTS)}.",
                where=f"{where}.input",
            )
        result.metrics.append(MetricSpec(alias, spec, metric_input))
        check(spec)
    for alias, node in (config.get("callbacks") or {}).items():
        result.callbacks[alias] = spec = spec_from(node, "callback", f"callbacks.{alias}")
        check(spec)
    return result


def checked_plan(cfg: Any, groups: tuple[str, ...] = tuple(GROUP_KINDS)) -> Plan:
    """A composed config resolved and checked, importing no factory that can be read from source.

    The one check of a run's config: names and value types of presets and
    overrides alike, so ``model.n_layer=abc`` fails in a second, before torch.
    """
    return plan(resolve(cfg), groups, load=False)


def build(p: Plan, group: str, **extra: Any) -> Any:
    """Build one group's component from a checked plan."""
    return build_component(p.specs[group], p.factory(group), **extra)


def build_model(p: Plan, tokenizer: Any) -> Any:
    """The model to train, sized to the tokenizer's vocabulary where the config leaves that
    open, and prepared by the run's adapter when it has one."""
    extra = {}
    accepted = parameter_names(p.factory("model")) or set()
    if "vocab_size" in accepted:
        extra["vocab_size"] = tokenizer.vocab_size
    model = build(p, "model", **extra)
    check_pairing(p, tokenizer, model)
    return with_adapter(p, model)


def with_adapter(p: Plan, model: Any) -> Any:
    """``model`` prepared by the ``adapter`` group's adapter (as built when there is none).

    The checkpoints of the model it returns hold only what the adapter trains
    (:mod:`codex_ml.training.checkpoint.trainable`); an adapter that cannot
    prepare this model (a ``target_modules`` that matches nothing) is a ConfigError.
    """
    if "adapter" not in p.specs:
        return model
    from codex_ml.training.checkpoint.trainable import adapt

    spec = p.specs["adapter"]
    try:
        return adapt(model, build(p, "adapter"), name=spec.name, kwargs=spec.kwargs)
    except ValueError as exc:
        raise ConfigError(f"adapter: {exc}", where="adapter") from None


def check_pairing(p: Plan, tokenizer: Any, model: Any) -> None:
    """Refuse a tokenizer whose ids do not all fit the model's embedding table.

    Unchecked, the first id past the table fails deep in torch as ``index out
    of range in self``, after the run has started.
    """
    ids = getattr(tokenizer, "vocab_size", None)
    embeddings = getattr(model, "get_input_embeddings", None)
    rows = getattr(embeddings(), "num_embeddings", None) if callable(embeddings) else None
    if not isinstance(ids, int) or not isinstance(rows, int) or ids <= rows:
        return
    tokenizer_key, model_key = p.specs["tokenizer"].name, p.specs["model"].name
    raise ConfigError(
        f"model: tokenizer {tokenizer_key!r} gives {ids:,} token ids, but model {model_key!r} "
        f"has an embedding of {rows:,} rows, so every id from {rows:,} on would index past it. "
        "Pair them: use the tokenizer saved with the model (tokenizer=offline/hf "
        "tokenizer.name_or_path=DIR, the model's directory), or a model sized by the tokenizer "
        "(model=offline/decoder_only takes its vocab_size from the tokenizer).",
        where="model",
    )


def build_callbacks(p: Plan) -> list[tuple[str, str, Any]]:
    """(alias, registry key, callback object) for each configured callback, in config order."""
    return [
        (alias, spec.name, build_component(spec, p.factory(spec.where)))
        for alias, spec in p.callbacks.items()
    ]


def training_parts(p: Plan) -> dict[str, Any]:
    """The chosen optimizer and scheduler factories, with their presets' kwargs bound.

    Given to a trainer that takes ``optimizer``/``scheduler`` parameters; the
    trainer supplies the rest (parameters, ``lr``, ``max_steps``...).
    """
    from functools import partial

    return {
        group: partial(p.factory(group), **p.specs[group].kwargs)
        for group in TRAINING_PARTS
        if group in p.specs
    }


def build_metrics(p: Plan) -> dict[str, tuple[Any, str]]:
    """alias -> (metric callable, input it scores)."""
    return {m.alias: (build_component(m.spec, p.factory(m.spec.where)), m.input) for m in p.metrics}


def data_source(p: Plan) -> DataSource:
    """What the run's token store is made from, as :func:`codex_ml.run.prepare.prepare` takes it."""
    node = p.config["data"]
    return DataSource(
        loader=p.specs["data"],
        factory=p.factory("data"),
        eval_path=node.get(EVAL_PATH_KEY),
        store=node.get(STORE_KEY),
        eval_fraction=p.run.get("eval_fraction", 0.1),
        seed=int(p.run.get("seed", 0)),
    )


def parameter_names(factory: Any) -> set[str] | None:
    """The keyword names a factory accepts; None when it takes ``**kwargs`` or has no signature."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return set(parameters)


def split_records(
    records: Iterable[Any], *, eval_fraction: float, seed: int
) -> tuple[list[Any], list[Any]]:
    """The deterministic train/eval split as two lists; the token store streams the same rule.

    Which records are held out is decided one at a time by
    :func:`codex_ml.data.split.assign`, so ``codex-ml evaluate`` scores exactly
    the records ``codex-ml train`` held out without either holding the corpus.
    """
    from codex_ml.data.split import assign

    if not 0.0 <= eval_fraction < 1.0:
        raise ConfigError(
            f"run.eval_fraction: must be in [0, 1), got {eval_fraction}.", where="run.eval_fraction"
        )
    train: list[Any] = []
    evaluation: list[Any] = []
    for held_out, record in assign(records, eval_fraction=eval_fraction, seed=seed):
        (evaluation if held_out else train).append(record)
    if not train and not evaluation:
        raise ConfigError("data: the data loader returned no records.", where="data")
    return train, evaluation
