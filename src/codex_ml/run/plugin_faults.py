"""Plugin faults travel with every run: a warning per fault, or none at all with strict_plugins.

A plugin that fails to import (the user's own tracker, say) used to vanish
from a training run without a word: only ``codex-ml plugins doctor`` knew.
Now ``train``, ``prepare``, ``evaluate`` and ``generate`` say each discovery
fault once (plugin, distribution, one-line cause) on stderr; a run also writes
them to ``train.log`` and ``summary.json``'s ``faults``. ``run.strict_plugins``
makes any fault a user error before a run directory exists.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from codex_ml.config import ConfigError

#: The prefix of a plugin fault in a run's ``faults`` (callback faults have their own words).
PREFIX = "plugin fault: "


def checked_plugin_faults(run_settings: Mapping[str, Any]) -> list[str]:
    """The discovery faults; with ``run.strict_plugins=true`` any of them is a ConfigError."""
    from codex_ml.registry.faults import plugin_faults

    faults = plugin_faults()
    if faults and run_settings.get("strict_plugins"):
        listed = "; ".join(faults)
        raise ConfigError(
            f"run.strict_plugins: {len(faults)} plugin fault(s): {listed}. Fix or uninstall "
            "the distribution, block it with CODEX_ML_BLOCK_PLUGINS, or drop "
            "run.strict_plugins=true to run with a warning instead (codex-ml plugins doctor "
            "shows the details).",
            where="run.strict_plugins",
        )
    return faults


def warn(command: str, faults: list[str]) -> None:
    """One stderr line per fault, for the commands that have no ``train.log``."""
    for fault in faults:
        print(f"codex-ml {command}: warning: {PREFIX}{fault}", file=sys.stderr)
