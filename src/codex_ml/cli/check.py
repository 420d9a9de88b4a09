"""``codex-ml plugins check [KIND KEY ...]``: the contract check, one line per key.

With no names, every third-party key (entry points and hook plugins) of every
kind that has a check is checked. A key whose factory needs arguments the
check cannot guess is reported as such, with how to pass them, not as a
failure; a kind without a check (trainers) is said to be skipped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from codex_ml.cli.listing import shown

#: Where a key comes from when a third party gave it.
THIRD_PARTY = ("entry-point", "plugin")


def run_checks(names: Sequence[str], kwargs_text: str) -> int:
    """Check the named keys (pairs of kind and key), or every third-party one; the exit status."""
    try:
        kwargs = _kwargs(kwargs_text)
        targets = list(_pairs(names)) if names else list(_third_party_keys())
    except ValueError as exc:
        print(f"codex-ml plugins check: error: {shown(exc)}", file=sys.stderr)
        return 2
    if not targets:
        print("no third-party components are installed; name one: codex-ml plugins check KIND KEY")
        return 0
    counts = dict.fromkeys(("pass", "FAIL", "needs", "skip"), 0)
    for kind, key in targets:
        verdict, text = check_one(kind, key, kwargs)
        counts[verdict] += 1
        print(f"{verdict:<5} {kind} {shown(key)}" + (f": {text}" if text else ""))
    print(
        f"checked {len(targets)}: {counts['pass']} kept their contract, {counts['FAIL']} broke it, "
        f"{counts['needs']} need arguments, {counts['skip']} have no check"
    )
    return 1 if counts["FAIL"] else 0


def check_one(kind: str, key: str, kwargs: dict[str, Any]) -> tuple[str, str]:
    """("pass" | "FAIL" | "needs" | "skip", what to say) for one key."""
    from codex_ml.testing.contracts import CHECKED_KINDS, NeedsArguments, check_component

    if kind not in CHECKED_KINDS:
        return "skip", f"no contract check for {kind} components (a run checks them)"
    try:
        checked = check_component(kind, key, **kwargs)
    except NeedsArguments as exc:
        return "needs", str(exc)
    except AssertionError as exc:
        lines = str(exc).splitlines()
        return "FAIL", "\n      ".join(shown(line) for line in lines)
    except Exception as exc:  # the registry's own errors, and anything a plugin raises
        return "FAIL", f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return "pass", f"{len(checked)} promises kept"


def _kwargs(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"--kwargs: not JSON ({exc.msg} at column {exc.colno}): {text!r}"
        ) from None
    if not isinstance(value, dict):
        raise ValueError(
            f'--kwargs: give a JSON object such as \'{{"path": "x.txt"}}\', not {text!r}'
        )
    return value


def _pairs(names: Sequence[str]) -> Iterator[tuple[str, str]]:
    from codex_ml.plugins.kinds import kind_named

    if len(names) % 2:
        raise ValueError(
            f"give pairs of kind and key (codex-ml plugins check metric my_metric), got {names!r}"
        )
    from codex_ml.registry import RegistryNotFoundError, get_registry

    for kind, key in zip(names[::2], names[1::2], strict=True):
        registry = get_registry(kind_named(kind).name)
        if key not in registry:
            try:
                registry.get(key)
            except RegistryNotFoundError as exc:  # its message suggests the close keys
                raise ValueError(str(exc)) from None
        yield registry.kind, key


def _third_party_keys() -> Iterator[tuple[str, str]]:
    from codex_ml.registry import registries

    for kind, registry in registries.items():
        for entry in registry.entries():
            if entry.source in THIRD_PARTY:
                yield kind, entry.key
