"""Check ``codex-ml train`` overrides before Hydra runs, for errors a user can act on.

Hydra itself would reject ``model.n_layr=2`` ("Key 'n_layr' is not in
struct") and an unknown preset, but without saying which names *are*
accepted. This composes the chosen presets once (group choices only, no
parameter overrides) and checks every ``group.param=value`` override against
the signature of the factory the group names, so a typo is reported with the
registry key, the accepted names and the closest one.

It also refuses, before Hydra can act on them, overrides that would make Hydra
itself import code: codex-ml never instantiates a config, but Hydra
instantiates ``hydra.callbacks`` (and a multirun's launcher and sweeper) from
their ``_target_`` before the run starts, and hands ``hydra.job_logging`` to
:mod:`logging.config`, which imports the names under ``class`` and ``()``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codex_ml.config import ComponentSpec, ConfigError, check_spec
from codex_ml.config.safety import INSTANTIATION_KEYS
from codex_ml.run.assemble import GROUP_KINDS

#: Keys that make Hydra import code: hydra.utils.instantiate's, and logging.config's.
_CODE_KEYS = INSTANTIATION_KEYS | {"class", "()"}

_CONFIG_NAME_FLAGS = ("-cn", "--config-name")
_OVERRIDE = re.compile(r"^(?P<key>[A-Za-z_][\w.@:/-]*)=(?P<value>.*)$", re.S)


def config_name_of(argv: Sequence[str], default: str = "train") -> str:
    """The ``-cn``/``--config-name`` argument, as Hydra reads it."""
    for index, arg in enumerate(argv):
        if arg in _CONFIG_NAME_FLAGS and index + 1 < len(argv):
            return argv[index + 1]
        for flag in _CONFIG_NAME_FLAGS:
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return default


def config_dirs_of(argv: Sequence[str]) -> list[str]:
    """``-cd``/``--config-dir`` arguments: extra directories Hydra searches for presets."""
    found = []
    for index, arg in enumerate(argv):
        if arg in ("-cd", "--config-dir") and index + 1 < len(argv):
            found.append(argv[index + 1])
        elif arg.startswith("--config-dir="):
            found.append(arg.split("=", 1)[1])
    return [Path(d).expanduser().resolve().as_uri() for d in found]


def _overrides(argv: Sequence[str]) -> list[tuple[str, str]]:
    skip_next = False
    found = []
    for arg in argv:
        if skip_next:
            skip_next = False
            continue
        if arg in (*_CONFIG_NAME_FLAGS, "-cp", "--config-path", "-cd", "--config-dir"):
            skip_next = True
            continue
        match = _OVERRIDE.match(arg)
        if match and not arg.startswith("-"):
            found.append((match["key"], match["value"]))
    return found


def reject_code_overrides(argv: Sequence[str]) -> None:
    """Raise :class:`ConfigError` for an override that would make Hydra import code."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            (override,) = parser.parse_overrides([arg])
        except Exception:  # malformed: Hydra reports it in its own words
            continue
        key = override.key_or_group
        if override.is_delete() or not key.startswith(("hydra.", "hydra/")):
            continue  # elsewhere a `_target_` is refused with the rest of the config
        found = _code_key(re.split(r"[./]", key), override.value())
        if found is None and (key + ".").startswith("hydra.callbacks."):
            found = "hydra.callbacks"
        if found is not None:
            raise ConfigError(
                f"{key}: codex-ml configs never import code, and through {found!r} Hydra "
                f"would import and run code before the run starts. Remove this override; "
                f"components are chosen by registry key (`name: <key>`, see "
                f"`codex-ml plugins list`).",
                where=key,
            )


def _code_key(parts: Sequence[str], value: Any) -> str | None:
    """The first key in ``parts`` or in (nested) ``value`` that makes Hydra import code."""
    found = next((part for part in parts if part in _CODE_KEYS), None)
    if isinstance(value, dict):
        found = found or next((k for k in value if k in _CODE_KEYS), None)
        values = list(value.values())
    else:
        values = value if isinstance(value, list) else []
    return found or next(filter(None, (_code_key((), v) for v in values)), None)


def precheck(argv: Sequence[str]) -> None:
    """Raise :class:`ConfigError` for code-importing overrides, unknown presets, bad parameters."""
    reject_code_overrides(argv)
    check_overrides(config_name_of(argv), _overrides(argv), config_dirs_of(argv))


def parse_overrides(args: Sequence[str]) -> list[tuple[str, str]]:
    """``key=value`` pairs of a list of Hydra overrides (options skipped)."""
    return _overrides(args)


def check_overrides(
    config_name: str, overrides: Sequence[tuple[str, str]], extra_dirs: Sequence[str] = ()
) -> None:
    """Compose the chosen presets and check each ``group.param`` override against them."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import MissingConfigException

    from codex_ml.resources import configs_dir
    from codex_ml.run.resolvers import register_resolvers

    choices = [f"{k}={v.split(',')[0]}" for k, v in overrides if k in (*GROUP_KINDS, "metrics")]
    if extra_dirs:
        choices.append(f"hydra.searchpath=[{','.join(extra_dirs)}]")
    register_resolvers()
    try:
        with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
            cfg = compose(config_name, overrides=choices, return_hydra_config=True)
    except MissingConfigException as exc:
        raise ConfigError(_missing_preset_message(exc), where="defaults") from None
    if cfg.hydra.get("callbacks"):  # a preset (from --config-dir, say) that sets some
        raise ConfigError(
            "hydra.callbacks: codex-ml configs never import code, and Hydra would import and "
            "run these callbacks before the run starts. Remove them from the preset.",
            where="hydra.callbacks",
        )
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


def _missing_preset_message(exc: Exception) -> str:
    text = str(exc)
    first = text.strip().splitlines()[0]
    match = re.search(r"Could not find '([^']+)'", text)
    primary = re.search(r"Cannot find primary config '([^']+)'", text)
    if primary:
        return (
            f"there is no run preset {primary.group(1)!r} (-cn). Available: "
            f"{', '.join(primary_presets())}."
        )
    if not match:
        return " ".join(text.split())
    missing = match.group(1)
    group = missing.split("/", 1)[0]
    from codex_ml.resources import configs_dir

    root = configs_dir() / group
    options = (
        sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))
        if root.is_dir()
        else []
    )
    known = f" Available {group} presets: {', '.join(options)}." if options else ""
    return f"{first.rstrip('.')}: there is no preset {missing!r}.{known}"


def primary_presets() -> list[str]:
    """The configs ``-cn`` can name: every preset outside the component groups."""
    from codex_ml.resources import configs_dir

    root = configs_dir()
    return sorted(
        str(path.relative_to(root).with_suffix(""))
        for path in root.rglob("*.yaml")
        if path.relative_to(root).parts[0] not in (*GROUP_KINDS, "metrics")
    )
