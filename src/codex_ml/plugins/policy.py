"""Which third-party code may load: the autoload switch and the block list.

Read from the environment at discovery time (and again on ``reload()``), the
way pytest reads ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``:

- ``CODEX_ML_DISABLE_PLUGIN_AUTOLOAD=1`` (any non-empty value but ``0`` or
  ``false``) turns off all third-party discovery, hook plugins and component
  entry points alike; the built-in catalogue and in-process registrations
  still work.
- ``CODEX_ML_BLOCK_PLUGINS=a,b`` blocks hook plugins and entry points by their
  entry-point name or by their distribution's name. Blocked code is never
  imported.
"""

from __future__ import annotations

import os

from codex_ml.plugins.discovery import EntryPointRecord, ScanFault, normalize_distribution_name

__all__ = ["autoload_disabled", "blocked_names", "is_blocked", "loadable", "reportable"]


def autoload_disabled() -> bool:
    """Whether ``CODEX_ML_DISABLE_PLUGIN_AUTOLOAD`` is set to anything but ``0`` or ``false``.

    A switch that keeps third-party code out fails safe: ``y``, ``2`` or a typo
    disable autoload, as any non-empty value disables pytest's.
    """
    value = os.environ.get("CODEX_ML_DISABLE_PLUGIN_AUTOLOAD", "")
    return value.strip().lower() not in ("", "0", "false")


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


def reportable(faults: tuple[ScanFault, ...]) -> list[str]:
    """The messages of the scan faults of distributions that are not kept out.

    A disabled or blocked distribution was never tried, so its faults are not reported.
    """
    if not faults or autoload_disabled():
        return []
    blocked = blocked_names()
    return [
        fault.message
        for fault in faults
        if normalize_distribution_name(fault.distribution) not in blocked
    ]
