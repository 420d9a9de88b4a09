"""The original codex-ml's call form: ``get_model(name, cfg)`` with a config mapping.

Users migrating from the project whose documentation page is our spec pass
the factory's options as one mapping (often a Hydra node), with ``local_path``
where codex-ml's factories say ``path``, and a model's LoRA settings inside it:
``get_model("MiniLM", {"lora": {"enabled": True, "r": 4}})`` builds the model
and applies the ``lora`` adapter to it. Only ``get_<kind>`` calls with a
mapping come here, so the plain keyword form pays nothing for it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

#: Old option name -> codex-ml's name, for factories that take the new name.
ALIASES = {"local_path": "path"}
#: The model config's section of LoRA settings, and its old names for the adapter's kwargs.
LORA_SECTION = "lora"
LORA_ALIASES = {"lora_alpha": "alpha", "lora_dropout": "dropout", "rank": "r"}


def build_from_config(
    kind: str, name: str, factory: Any, config: Any, kwargs: Mapping[str, Any]
) -> Any:
    """``factory`` called with ``config`` (see :func:`config_kwargs`); a model's enabled
    ``lora`` section applies the ``lora`` adapter to the model built."""
    options = config_kwargs(kind, name, factory, config, kwargs)
    lora = None
    if kind == "model" and LORA_SECTION not in _parameter_names(factory):
        lora = options.pop(LORA_SECTION, None)
    component = factory(**options)
    if lora is None:
        return component
    return _with_lora(name, component, lora)


def _with_lora(name: str, model: Any, section: Any) -> Any:
    """``model`` with the ``lora`` adapter applied when ``section`` says ``enabled``."""
    if not isinstance(section, Mapping):
        raise TypeError(
            f"get_model({name!r}, config): config['lora'] must be a mapping such as "
            f"{{'enabled': True, 'r': 8}}, got {type(section).__name__}."
        )
    settings = {LORA_ALIASES.get(key, key): value for key, value in section.items()}
    if not settings.pop("enabled", False):
        return model
    from codex_ml.registry import get_adapter
    from codex_ml.training.checkpoint.trainable import adapt

    return adapt(model, get_adapter("lora", **settings), name="lora", kwargs=settings)


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
