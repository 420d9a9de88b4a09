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

from codex_ml.config import ComponentSpec, ConfigError, check_spec
from codex_ml.run.assemble import GROUP_KINDS
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
    """Compose the chosen presets and check each ``group.param`` override against them."""
    choices = [f"{k}={v.split(',')[0]}" for k, v in overrides if k in (*GROUP_KINDS, "metrics")]
    cfg = compose_config(config_name, choices, extra_dirs)
    for key, _ in overrides:
        group, _, param = key.partition(".")
        if group in GROUP_KINDS and param and "." not in param:
            _check_param(cfg, group, param, overrides)


def _check_param(cfg: Any, group: str, param: str, overrides: Sequence[tuple[str, str]]) -> None:
    node = cfg.get(group)
    # keys(), not `in node`: OmegaConf reports a ??? (mandatory) value as absent
    if node is None or param in node.keys() or param == "name":  # noqa: SIM118
        return
    name = next((v for k, v in overrides if k == f"{group}.name"), node.get("name"))
    spec = ComponentSpec(GROUP_KINDS[group], str(name), {param: None}, group)
    check_spec(spec, provided=(*node.keys(), "vocab_size"))
    raise ConfigError(  # the factory takes it, but the preset does not list it
        f"{group}.{param}: the {group} preset does not set {param!r}; add it with "
        f"+{group}.{param}=<value>.",
        where=f"{group}.{param}",
    )
