"""The discovery faults of the registries: what ``plugins list``/``doctor`` and every run report.

A fault is a plugin that failed to import, a hook that raised, an entry point
that could not be read: found when a registry first looks at its sources,
kept as data (a registry never raises for another plugin's fault), and told
to the user once each, whichever registries saw it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported on the listing path
if TYPE_CHECKING:
    from collections.abc import Iterable

    from codex_ml.registry.base import Registry

__all__ = ["distinct_problems", "plugin_faults"]


def distinct_problems(registries: Iterable[Registry]) -> list[str]:
    """Each distinct discovery fault once, across the registries given."""
    seen: dict[str, None] = {}
    for registry in registries:
        for problem in registry.problems():
            seen.setdefault(problem.message, None)
    return list(seen)


def plugin_faults() -> list[str]:
    """Every registry's discovery faults, each once and on one line (for a run's warnings)."""
    from codex_ml.registry import registries

    return [" ".join(message.split()) for message in distinct_problems(registries.values())]
