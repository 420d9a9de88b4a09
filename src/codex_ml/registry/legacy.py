"""The original codex-ml's call form: ``get_model(name, cfg)`` with a config mapping.

Users migrating from the project whose documentation page is our spec pass
the factory's options as one mapping (often a Hydra node), with ``local_path``
where codex-ml's factories say ``path``. Only ``get_<kind>`` calls with a
mapping come here, so the plain keyword form pays nothing for it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

#: Old option name -> codex-ml's name, for factories that take the new name.
ALIASES = {"local_path": "path"}


def config_kwargs(
    kind: str, name: str, factory: Any, config: Any, kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """Keyword arguments for ``factory``: ``config`` with aliases renamed, ``kwargs`` over it."""
    options = _plain(kind, name, config)
    accepted = _parameter_names(factory)
    for old, new in ALIASES.items():
        if old not in options or old in accepted:
            continue
        if new in options:
            raise ValueError(
                f"get_{kind}({name!r}, config): the config gives both {old!r} and {new!r}, which "
                f"mean the same here; keep only {new!r}."
            )
        options[new] = options.pop(old)
    return {**options, **kwargs}


def _plain(kind: str, name: str, config: Any) -> dict[str, Any]:
    """``config`` as a plain dict with string keys (a Hydra/OmegaConf node is resolved first)."""
    omegaconf = sys.modules.get("omegaconf")  # a DictConfig can only come from a loaded omegaconf
    if omegaconf is not None and isinstance(config, omegaconf.DictConfig):
        config = omegaconf.OmegaConf.to_container(config, resolve=True)
    if not isinstance(config, Mapping):
        raise TypeError(
            f"get_{kind}({name!r}, config): config must be a mapping of the factory's options "
            f"(e.g. {{'path': 'artifacts/models/gpt2'}}), got {type(config).__name__}. Pass "
            f"options as keyword arguments or as one mapping."
        )
    bad = [key for key in config if not isinstance(key, str)]
    if bad:
        raise TypeError(
            f"get_{kind}({name!r}, config): option names must be strings, got {bad[0]!r}."
        )
    return dict(config)


def _parameter_names(factory: Any) -> frozenset[str]:
    """The keyword names ``factory`` declares (empty when it cannot be inspected)."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(p.name for p in parameters if p.kind is not p.VAR_KEYWORD)
