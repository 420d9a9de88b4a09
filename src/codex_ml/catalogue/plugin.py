"""The built-in catalogue, as a hook plugin like any other.

Every entry is a :class:`~codex_ml.plugins.LazyFactory`: listing the catalogue
imports none of its components, and the first ``get`` of a key imports only
the module behind it (and torch or transformers only if that module needs
them). The table itself is :mod:`codex_ml.catalogue.table`.
"""

from __future__ import annotations

from codex_ml.catalogue.table import CATALOGUE
from codex_ml.plugins import LazyFactory, hookimpl

__all__ = ["CATALOGUE"]  # re-exported: the table lives in codex_ml.catalogue.table


def _entries(kind: str) -> dict[str, LazyFactory]:
    return {key: LazyFactory(target) for key, target in CATALOGUE[kind].items()}


@hookimpl
def codex_ml_register_tokenizers() -> dict[str, LazyFactory]:
    return _entries("tokenizer")


@hookimpl
def codex_ml_register_models() -> dict[str, LazyFactory]:
    return _entries("model")


@hookimpl
def codex_ml_register_metrics() -> dict[str, LazyFactory]:
    return _entries("metric")


@hookimpl
def codex_ml_register_data_loaders() -> dict[str, LazyFactory]:
    return _entries("data_loader")


@hookimpl
def codex_ml_register_trainers() -> dict[str, LazyFactory]:
    return _entries("trainer")


@hookimpl
def codex_ml_register_reward_models() -> dict[str, LazyFactory]:
    return _entries("reward_model")
