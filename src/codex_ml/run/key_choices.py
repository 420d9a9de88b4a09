"""Any registry key is a choice of its config group, plugin keys included.

``data=globex-lines`` names no preset file, but ``globex-lines`` is a data
loader key: the group then holds the key's implied preset
(:func:`codex_ml.config.presets.factory_preset`: ``name`` and each keyword
parameter's default, a required one as ``???``). The same for each element of
a list group (``callbacks=[csv,acme-boom]``, ``metrics=[ppl,my-metric]``),
nested under the key as list presets are. A preset file of the same name
always wins: presets are saved choices with values, keys are the fallback.

The implied presets are put in Hydra's ``ConfigStore`` just before composing,
for the names the overrides ask for only, so composing sees them as it sees
files, and nothing else of Hydra changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from codex_ml.run.assemble import GROUP_KINDS, INTERNAL_PARAMETERS, LIST_GROUPS, RESERVED

#: Parameters an implied preset sets to something other than the factory's default.
FIXED: dict[str, dict[str, Any]] = {"model": {"vocab_size": None}}  # from the tokenizer
#: What a metric scores when neither a preset nor the metric says: its value for `input:`.
DEFAULT_METRIC_INPUT = "references"


def store_key_choices(overrides: Sequence[str], config_dirs: Sequence[str | Path] = ()) -> None:
    """Put the implied preset of every chosen registry key that has no preset in ConfigStore."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for group, name in chosen_names(overrides):
        if has_preset(group, name, config_dirs):
            continue
        node = implied_node(group, name)
        if node is not None:
            store.store(group=group, name=name, node=node, provider="codex-ml registry")


def chosen_names(overrides: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(group, name) for each choice of a component group in the overrides (sweeps and lists
    included); overrides Hydra cannot parse are left to the composition to report."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    groups = (*GROUP_KINDS, *LIST_GROUPS)
    parser = OverridesParser.create()
    for text in overrides:
        try:
            override = parser.parse_override(text)
        except HydraException:
            continue
        if override.key_or_group not in groups or override.package or override.is_delete():
            continue
        if override.is_sweep_override():
            values: list[Any] = list(override.sweep_string_iterator())
        else:
            value = override.value()
            values = list(value) if isinstance(value, list) else [value]
        for value in values:
            if isinstance(value, str) and value:
                yield override.key_or_group, value


def has_preset(group: str, name: str, config_dirs: Sequence[str | Path] = ()) -> bool:
    """Whether a preset file ``<group>/<name>.yaml`` exists in the bundled or a ``-cd`` folder."""
    from codex_ml.resources import configs_dir

    roots = (configs_dir(), *(Path(d).expanduser() for d in config_dirs))
    return any((root / group / f"{name}.yaml").is_file() for root in roots)


def implied_node(group: str, name: str) -> dict[str, Any] | None:
    """The node ``group=name`` stands for when ``name`` is a registry key; None when it is not."""
    from codex_ml.config.presets import factory_preset
    from codex_ml.registry import RegistryError, get_registry

    kind = GROUP_KINDS.get(group) or LIST_GROUPS[group]
    try:
        if name not in get_registry(kind):
            return None
        _, skip, fixed = preset_options(kind)
        preset = factory_preset(kind, name, skip=skip, fixed=fixed)
    except (RegistryError, KeyError, TypeError, ValueError):
        return None  # a broken entry: the run's own check reports it by name
    node = preset.node()
    if group in LIST_GROUPS:
        if group == "metrics":
            node["input"] = metric_inputs().get(preset.key, DEFAULT_METRIC_INPUT)
        return {name: node}
    return node


def preset_options(kind: str) -> tuple[str, tuple[str, ...], dict[str, Any] | None]:
    """The config group of a kind, the parameters codex-ml sets itself, and fixed values."""
    groups = {k: g for g, k in (*GROUP_KINDS.items(), *LIST_GROUPS.items())}
    group = groups.get(kind, kind)
    skip = (*INTERNAL_PARAMETERS.get(group, ()), *RESERVED.get(group, ()))
    return group, skip, FIXED.get(group)


@cache
def metric_inputs() -> dict[str, str]:
    """Registry key -> the input the bundled metric presets give it (``ppl``: token-nll...)."""
    import yaml

    from codex_ml.resources import configs_dir

    found: dict[str, str] = {}
    for file in sorted((configs_dir() / "metrics").rglob("*.yaml")):
        loaded = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        for entry in loaded.values() if isinstance(loaded, dict) else ():
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                found.setdefault(entry["name"], str(entry.get("input", DEFAULT_METRIC_INPUT)))
    return found


def registry_keys(group: str) -> list[str]:
    """Every key of the kind a group names (for "did you mean" beside the presets)."""
    from codex_ml.registry import get_registry

    kind = GROUP_KINDS.get(group) or LIST_GROUPS.get(group)
    return get_registry(kind).list() if kind else []
