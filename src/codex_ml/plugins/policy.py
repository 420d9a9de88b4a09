"""Which third-party code may load: the autoload switch and the block list.

Read from the environment at discovery time (and again on ``reload()``), the
way pytest reads ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``:

- ``CODEX_ML_DISABLE_PLUGIN_AUTOLOAD=1`` turns off all third-party discovery,
  hook plugins and component entry points alike; the built-in catalogue and
  in-process registrations still work.
- ``CODEX_ML_BLOCK_PLUGINS=a,b`` blocks hook plugins and entry points by their
  entry-point name or by their distribution's name. Blocked code is never
  imported.
"""

from __future__ import annotations

import os

from codex_ml.plugins.discovery import EntryPointRecord, normalize_distribution_name

__all__ = ["autoload_disabled", "blocked_names", "is_blocked", "loadable"]


def autoload_disabled() -> bool:
    """Whether ``CODEX_ML_DISABLE_PLUGIN_AUTOLOAD`` is set to a true value."""
    value = os.environ.get("CODEX_ML_DISABLE_PLUGIN_AUTOLOAD", "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def blocked_names() -> frozenset[str]:
    """The normalised names listed in ``CODEX_ML_BLOCK_PLUGINS``."""
    raw = os.environ.get("CODEX_ML_BLOCK_PLUGINS", "")
    return frozenset(
        normalize_distribution_name(part.strip()) for part in raw.split(",") if part.strip()
    )


def is_blocked(record: EntryPointRecord, blocked: frozenset[str]) -> bool:
    """Whether an entry point is blocked by its own name or its distribution's."""
    if not blocked:
        return False
    return (
        normalize_distribution_name(record.name) in blocked
        or normalize_distribution_name(record.distribution) in blocked
    )


def loadable(records: list[EntryPointRecord]) -> list[EntryPointRecord]:
    """The entry points that the autoload switch and the block list allow to load."""
    if autoload_disabled():
        return []
    blocked = blocked_names()
    if not blocked:
        return records
    return [record for record in records if not is_blocked(record, blocked)]
