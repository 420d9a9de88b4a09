"""The numbers of a record, as every tracker records them: the same names as ``metrics.jsonl``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Record keys that are not measurements: the x-axis, and a constant of the run.
NOT_SCALARS = ("event", "step", "max_steps")


def scalars(record: Mapping[str, Any]) -> dict[str, float]:
    """Every int or float of ``record`` (not bools), by its ``metrics.jsonl`` key."""
    return {
        key: float(value)
        for key, value in record.items()
        if key not in NOT_SCALARS and isinstance(value, int | float) and not isinstance(value, bool)
    }


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
