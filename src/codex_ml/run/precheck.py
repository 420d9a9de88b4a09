"""Check ``codex-ml train`` overrides before anything is built, for errors a user can act on.

Hydra itself would reject ``model.n_layr=2`` ("Key 'n_layr' is not in
struct") and an unknown preset, but without saying which names *are*
accepted. This composes the chosen presets once (group choices only, no
parameter overrides) and checks every ``group.param=value`` override against
the signature of the factory the group names, so a typo is reported with the
registry key, the accepted names and the closest one. Hydra's own settings are
refused here too (:mod:`codex_ml.run.compose` says why).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codex_ml.config import ComponentSpec, ConfigError, check_spec, reject_instantiation_keys
from codex_ml.run.assemble import GROUP_KINDS, INTERNAL_PARAMETERS, LIST_GROUPS
from codex_ml.run.compose import check_hydra_overrides, compose_config

_OVERRIDE = re.compile(r"^(?P<key>[A-Za-z_+~][\w.@:/+~-]*)=(?P<value>.*)$", re.S)


def parse_overrides(args: Sequence[str]) -> list[tuple[str, str]]:
    """``key=value`` pairs of a list of Hydra overrides (``+`` kept on the key)."""
    found = []
    for arg in args:
        match = _OVERRIDE.match(arg)
        if match and not arg.startswith("-"):
            found.append((match["key"], match["value"]))
    return found


def reject_code_overrides(overrides: Sequence[str]) -> None:
    """Raise :class:`ConfigError` for an override of Hydra's settings that codex-ml refuses."""
    check_hydra_overrides(overrides)


def precheck(
    config_name: str, overrides: Sequence[str], config_dirs: Sequence[str | Path] = ()
) -> None:
    """Raise :class:`ConfigError` for refused Hydra settings, unknown presets, bad parameters."""
    check_hydra_overrides(overrides)
    check_overrides(config_name, parse_overrides(overrides), config_dirs)


def check_overrides(
    config_name: str,
    overrides: Sequence[tuple[str, str]],
    extra_dirs: Sequence[str | Path] = (),
) -> None:
    """Compose the chosen presets and check each override's key against them.

    Unknown sections, group paths written as keys (``model/offline=minilm``),
    unknown ``run.*`` settings and parameters no factory takes are refused with
    the names that would work; factories are read from source, not imported.
    """
    choices = [f"{k}={_first(v)}" for k, v in overrides if k in (*GROUP_KINDS, *LIST_GROUPS)]
    cfg = compose_config(config_name, choices, extra_dirs)
    groups = config_groups(extra_dirs)
    for key, value in overrides:
        bare = key.lstrip("+~")
        section, _, param = bare.partition(".")
        if "/" in section:
            _check_group_path(bare, value, cfg)
        elif section == "hydra" or (bare in groups and not param):
            continue  # Hydra's settings are checked apart; a group choice (+experiment=x)
        elif section in LIST_GROUPS and key.startswith("+"):
            continue  # +callbacks.mine.name=key adds one without a preset (checked when built)
        elif section in GROUP_KINDS and section not in cfg:
            _not_chosen(bare, section)
        elif section not in cfg:
            known = [k for k in (*cfg.keys(), *sorted(groups)) if k != "hydra" and "/" not in k]
            _unknown(bare, section, known, "config section")
        elif section in GROUP_KINDS and param == "name" and not key.startswith(("+", "~")):
            _check_name_switch(cfg, section, value, overrides)
        elif section in GROUP_KINDS and param and "." not in param:
            _check_param(cfg, section, param, overrides, added=key.startswith("+"))
        elif section == "run" and param:
            run_keys = list(cfg.run.keys())
            if param.split(".")[0] not in run_keys:
                _unknown(bare, param, run_keys, "run setting")


def _first(value: str) -> str:
    """The first choice of a sweep (``a,b``); a multi-select list (``[a,b]``) is one choice."""
    return value if value.lstrip().startswith("[") else value.split(",")[0]


def config_groups(extra_dirs: Sequence[str | Path] = ()) -> set[str]:
    """The config groups (preset folders) of the bundled presets and of each ``-cd`` folder."""
    from codex_ml.resources import configs_dir

    found = set()
    for root in (configs_dir(), *map(Path, extra_dirs)):
        for folder in Path(root).expanduser().rglob("*"):
            if folder.is_dir() and any(folder.glob("*.yaml")):
                found.add(folder.relative_to(Path(root).expanduser()).as_posix())
    return found


def _unknown(key: str, name: str, known: Sequence[str], what: str) -> None:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"{key}: there is no {what} {name!r}.{hint} Known: {', '.join(dict.fromkeys(known))}.",
        where=key,
    )


def _not_chosen(key: str, group: str) -> None:
    """``adapter.r=4`` with no adapter chosen: name the choice to make first."""
    from codex_ml.run.compose import group_presets

    presets = group_presets(group)
    raise ConfigError(
        f"{key}: no {group} is chosen (there is none by default), so there is nothing to set "
        f"{key.partition('.')[2]!r} on; choose one first: {group}=<preset or registry key> "
        f"{key}=... (presets: {', '.join(presets) or 'none'}).",
        where=key,
    )


def _check_group_path(key: str, value: str, cfg: Any) -> None:
    """``model/offline=minilm`` is ``model=offline/minilm``: Hydra's own error does not say so."""
    group, _, rest = key.partition("/")
    if group in cfg:
        raise ConfigError(
            f"{key}={value}: the config group is {group!r}, and the preset's folder is part of "
            f"the preset's name; write {group}={rest}/{value}.",
            where=key,
        )


def _check_name_switch(
    cfg: Any, group: str, key: str, overrides: Sequence[tuple[str, str]]
) -> None:
    """``data.name=OTHER`` keeps the preset's values: refuse it when they do not fit OTHER.

    A preset's kwargs belong to its own key; choosing the key as the group
    (``data=OTHER``) gives OTHER's own parameters and defaults instead.
    """
    from codex_ml.config.components import accepted_parameters
    from codex_ml.run.assemble import RESERVED

    node = cfg.get(group)
    kind = GROUP_KINDS[group]
    if node is None or key == node.get("name"):
        return
    try:
        accepted = accepted_parameters(kind, key)
    except ConfigError:
        return  # an unknown key: the plan's own check names it
    if accepted is None:
        return
    set_here = {
        k.lstrip("+").partition(".")[2]
        for k, _ in overrides
        if k.lstrip("+").startswith(f"{group}.")
    }
    skip = {"name", *RESERVED.get(group, ()), *INTERNAL_PARAMETERS.get(group, ()), *set_here}
    left = [k for k in node.keys() if k not in skip and k not in accepted]  # noqa: SIM118
    if not left:
        return
    raise ConfigError(
        f"{group}.name={key}: the {group} preset's {', '.join(map(repr, left))} "
        f"{'does' if len(left) == 1 else 'do'} not fit {kind} {key!r} (a preset's values belong "
        f"to its own key). Use {group}={key} instead: the key chosen as the group gives its "
        f"own parameters and defaults (set them with {group}.PARAM=...).",
        where=f"{group}.name",
    )


def _check_param(
    cfg: Any, group: str, param: str, overrides: Sequence[tuple[str, str]], *, added: bool
) -> None:
    reject_instantiation_keys({param: None}, group)  # `_target_` is refused as such, not a typo
    node = cfg.get(group)
    # keys(), not `in node`: OmegaConf reports a ??? (mandatory) value as absent
    if node is None or param in node.keys() or param == "name":  # noqa: SIM118
        return
    name = next((v for k, v in overrides if k.lstrip("+") == f"{group}.name"), node.get("name"))
    spec = ComponentSpec(GROUP_KINDS[group], str(name), {param: None}, group)
    check_spec(
        spec,
        provided=(*node.keys(), "vocab_size"),
        internal=INTERNAL_PARAMETERS.get(group, ()),
        load=False,
    )
    if added:
        return
    raise ConfigError(  # the factory takes it, but the preset does not list it
        f"{group}.{param}: the {group} preset does not set {param!r}; add it with "
        f"+{group}.{param}=<value>.",
        where=f"{group}.{param}",
    )
