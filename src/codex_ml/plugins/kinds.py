"""The table of component kinds: one row drives every per-kind name in the project.

Hookspec names, entry-point groups and the registry facade are all derived
from this table, so a seventh kind would be one more row.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The entry-point group of hook plugins (modules with ``@hookimpl`` functions).
PLUGIN_GROUP = "codex_ml.plugins"

#: The pluggy project name; the ``hookimpl`` marker is bound to it.
PROJECT_NAME = "codex_ml"


@dataclass(frozen=True, slots=True)
class Kind:
    """One component kind: ``Kind("data_loader", "data_loaders")``."""

    name: str
    plural: str

    @property
    def hook_name(self) -> str:
        """The hookspec a plugin implements to provide components of this kind."""
        return f"{PROJECT_NAME}_register_{self.plural}"

    @property
    def entry_point_group(self) -> str:
        """The entry-point group that maps a key straight to a factory."""
        return f"{PROJECT_NAME}.{self.plural}"


KINDS: tuple[Kind, ...] = (
    Kind("tokenizer", "tokenizers"),
    Kind("model", "models"),
    Kind("metric", "metrics"),
    Kind("data_loader", "data_loaders"),
    Kind("trainer", "trainers"),
    Kind("reward_model", "reward_models"),
)


def kind_named(name: str) -> Kind:
    """Look a kind up by singular or plural name (``"metric"`` or ``"metrics"``, any case)."""
    wanted = name.strip().lower().replace("-", "_")
    for kind in KINDS:
        if wanted in (kind.name, kind.plural):
            return kind
    known = ", ".join(kind.name for kind in KINDS)
    raise ValueError(f"unknown component kind {name!r}; the kinds are: {known}")
