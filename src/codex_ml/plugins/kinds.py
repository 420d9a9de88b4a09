"""The table of component kinds: one row drives every per-kind name in the project.

Hookspec names, entry-point groups and the registry facade are all derived
from this table: the callback, optimizer, scheduler and adapter kinds are four rows.
"""

from __future__ import annotations

#: The entry-point group of hook plugins (modules with ``@hookimpl`` functions).
PLUGIN_GROUP = "codex_ml.plugins"

#: The pluggy project name; the ``hookimpl`` marker is bound to it.
PROJECT_NAME = "codex_ml"

#: The distribution that ships the built-in plugins (the catalogue).
DISTRIBUTION_NAME = "codex-ml"


class Kind:
    """One component kind: ``Kind("data_loader", "data_loaders")``.

    A plain frozen class, not a dataclass: this module is on the path of every
    listing, and ``dataclasses`` imports ``inspect`` (a few ms per process).
    """

    __slots__ = ("name", "plural")

    def __init__(self, name: str, plural: str) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "plural", plural)

    def __setattr__(self, attr: str, value: object) -> None:
        raise AttributeError(f"Kind is read-only; cannot set {attr!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Kind):
            return NotImplemented
        return (self.name, self.plural) == (other.name, other.plural)

    def __hash__(self) -> int:
        return hash((self.name, self.plural))

    def __repr__(self) -> str:
        return f"Kind(name={self.name!r}, plural={self.plural!r})"

    def __reduce__(self) -> tuple[type[Kind], tuple[str, str]]:
        return Kind, (self.name, self.plural)  # pickle and copy go through __init__

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
    Kind("callback", "callbacks"),
    Kind("optimizer", "optimizers"),
    Kind("scheduler", "schedulers"),
    Kind("adapter", "adapters"),
)


def kind_named(name: str) -> Kind:
    """Look a kind up by singular or plural name (``"metric"`` or ``"metrics"``, any case)."""
    wanted = name.strip().lower().replace("-", "_")
    for kind in KINDS:
        if wanted in (kind.name, kind.plural):
            return kind
    known = ", ".join(kind.name for kind in KINDS)
    raise ValueError(f"unknown component kind {name!r}; the kinds are: {known}")
