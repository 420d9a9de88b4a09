"""Configs never import: keys that would make a config instantiate code are refused.

Hydra's ``instantiate`` treats ``_target_`` (and friends) as an import path to
call. codex-ml never calls ``instantiate``, and refuses such keys outright so
that a config copied from elsewhere cannot look as if it worked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from codex_ml.config.errors import ConfigError

#: Keys with a meaning to hydra.utils.instantiate; none has one here.
INSTANTIATION_KEYS = frozenset({"_target_", "_partial_", "_recursive_", "_args_", "_convert_"})


def reject_instantiation_keys(node: Any, where: str = "") -> None:
    """Raise :class:`ConfigError` if any mapping under ``node`` has an instantiation key."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            path = f"{where}.{key}" if where else str(key)
            if key in INSTANTIATION_KEYS:
                raise ConfigError(
                    f"{path}: codex-ml configs never import code, so {key!r} is not allowed. "
                    f"Name a registry key instead (`name: <key>`), and register or install the "
                    f"component you want (see `codex-ml plugins list`).",
                    where=path,
                )
            reject_instantiation_keys(value, path)
    elif isinstance(node, Sequence) and not isinstance(node, str):
        for index, value in enumerate(node):
            reject_instantiation_keys(value, f"{where}[{index}]")
