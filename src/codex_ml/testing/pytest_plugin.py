"""The codex-ml pytest plugin (installed through the ``pytest11`` entry point).

Fixtures:

``isolated_registries``
    Every registry (kind name -> Registry). Anything a test registers in
    any of them is gone when the test ends, pass or fail.
``codex_registry``
    A factory: ``codex_registry("metric")`` gives that kind's registry,
    isolated the same way for the rest of the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest


@pytest.fixture
def isolated_registries() -> Iterator[dict[str, Any]]:
    """Every registry, with in-process registrations undone after the test."""
    from codex_ml.registry import isolated

    with isolated() as registries:
        yield registries


@pytest.fixture
def codex_registry() -> Iterator[Callable[[str], Any]]:
    """``codex_registry(kind)``: that kind's registry, isolated until the test ends."""
    from codex_ml.registry import get_registry

    with ExitStack() as stack:

        def isolated_registry(kind: str) -> Any:
            return stack.enter_context(get_registry(kind).isolated())

        yield isolated_registry
