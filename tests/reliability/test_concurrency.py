"""Sixteen threads mixing get, register, temporary registration and reload.

For a few seconds every thread draws operations from its own seeded random
generator against the real facade, fed by an installed distribution whose
lazy entries take a moment to import. Afterwards: no exception but the
documented ones, no registration lost or leaked, every lazy module imported
exactly once, and every key resolved to one and the same factory.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from codex_ml.registry import RegistryNotFoundError, isolated, metric_registry

from . import report
from .conftest import ImportLog
from .faults import METRICS, PLUGINS, hook_module, install

THREADS = 16
SECONDS = 3.0
LAZY_MODULES = 12

SLOW_COMPONENT = """
import time
time.sleep(0.02)  # long enough for other threads to pile up behind the import

def build(scale=1.0):
    return lambda preds, targets: scale
"""


def install_lazy_distribution(site: Path, log: ImportLog) -> dict[str, str]:
    """Entry points and hook-plugin LazyFactories, each to its own slow module; key -> module."""
    entry_points = {f"rf_conc_ep_{i}": f"rf_conc_ep_mod_{i}" for i in range(LAZY_MODULES // 2)}
    via_hook = {f"rf_conc_hook_{i}": f"rf_conc_hook_mod_{i}" for i in range(LAZY_MODULES // 2)}
    hook = hook_module(
        "from codex_ml.plugins import LazyFactory\n\n"
        "@hookimpl\ndef codex_ml_register_metrics():\n"
        f"    return {{k: LazyFactory(m + ':build') for k, m in {via_hook!r}.items()}}\n"
    )
    install(
        site,
        "rf-concurrency",
        "1.0",
        entry_points={
            PLUGINS: {"rf_conc_hooks": "rf_conc_hooks"},
            METRICS: {key: f"{module}:build" for key, module in entry_points.items()},
        },
        modules={
            "rf_conc_hooks": hook,
            **{module: SLOW_COMPONENT for module in [*entry_points.values(), *via_hook.values()]},
        },
        log=log.path,
    )
    return entry_points | via_hook


class Worker:
    """One thread's share: its own random draws, its own keys, and what it saw."""

    def __init__(self, index: int, lazy: list[str], shared: dict[str, set[str]]) -> None:
        self.index = index
        self.rng = random.Random(1000 + index)
        self.lazy = lazy
        self.shared = shared  # thread index -> its temporary keys, for cross-thread lookups
        self.permanent: dict[str, Callable[..., object]] = {}
        self.resolved: dict[str, set[int]] = defaultdict(set)
        self.errors: list[BaseException] = []
        self.documented = 0
        self.operations = 0

    def factory(self) -> Callable[..., object]:
        def build() -> int:
            return self.index

        return build

    def step(self) -> None:
        n = self.operations
        roll = self.rng.random()
        if roll < 0.45:
            key = self.rng.choice(self.lazy)
            self.resolved[key].add(id(metric_registry.get(key)))
        elif roll < 0.60:
            key, build = f"rf_t{self.index}_permanent_{n}", self.factory()
            assert metric_registry.register(key, build) is build
            self.permanent[key] = build
        elif roll < 0.80:
            key, build = f"rf_t{self.index}_temporary_{n}", self.factory()
            with metric_registry.temporary(key, build):
                self.shared.setdefault(str(self.index), set()).add(key)
                assert metric_registry.get(key) is build
                assert key in metric_registry.list()
            self.shared[str(self.index)].discard(key)
            assert key not in metric_registry
        elif roll < 0.90 and self.permanent:
            key = self.rng.choice(list(self.permanent))
            assert metric_registry.get(key.upper()) is self.permanent[key]
        elif roll < 0.96:
            others = [k for keys in list(self.shared.values()) for k in list(keys)]
            if others:
                try:  # another thread's temporary key may be gone already: documented
                    metric_registry.get(self.rng.choice(others))
                except RegistryNotFoundError:
                    self.documented += 1
        else:
            metric_registry.reload()

    def run(self, barrier: threading.Barrier, deadline: float) -> None:
        try:
            barrier.wait()
            while time.monotonic() < deadline:
                self.step()
                self.operations += 1
        except BaseException as exc:  # reported by the test, never swallowed
            self.errors.append(exc)


@pytest.mark.timeout(120)
def test_sixteen_threads_lose_nothing_and_import_each_lazy_entry_once(
    tmp_path: Path, import_log: ImportLog, on_sys_path: Callable[..., None]
) -> None:
    modules = install_lazy_distribution(tmp_path / "site", import_log)
    on_sys_path(tmp_path / "site")
    shared: dict[str, set[str]] = {}
    workers = [Worker(i, sorted(modules), shared) for i in range(THREADS)]
    with isolated():
        barrier = threading.Barrier(THREADS)
        deadline = time.monotonic() + SECONDS
        threads = [
            threading.Thread(target=w.run, args=(barrier, deadline), daemon=True) for w in workers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not [t for t in threads if t.is_alive()], "a thread hung"
        errors = [e for w in workers for e in w.errors]
        assert errors == [], errors[:3]

        # No lost registration, no leaked temporary one.
        for worker in workers:
            for key, build in worker.permanent.items():
                assert metric_registry.get(key) is build, key
        assert not [key for key in metric_registry.list() if "_temporary_" in key]

        # Every lazy module imported once; every key resolved to that module's own factory.
        imported = import_log.modules()
        for key, module in modules.items():
            assert imported.count(module) == 1, (module, imported.count(module))
            seen = set().union(*(w.resolved[key] for w in workers))
            assert seen <= {id(sys.modules[module].build)}, key

    operations = sum(w.operations for w in workers)
    assert operations > THREADS * 10  # the threads really did run side by side
    report.record("runs_survived")
    report.record("bad_inputs_tried", sum(w.documented for w in workers))


@pytest.mark.timeout(120)
def test_a_plugin_using_the_registries_as_it_loads_fails_alone_under_concurrent_first_use(
    install_faults: Callable[..., list[Path]],
) -> None:
    """Every kind discovered at once, from many threads, while a plugin registers at import.

    Discovery of one kind imports the hook plugins; the plugin then asks another
    kind's registry, which another thread may be discovering at that moment.
    """
    from codex_ml.registry import registries, reload

    from .faults import fault_named

    fault = fault_named("registers-at-import")
    install_faults(fault)
    kinds = list(registries)
    for _ in range(8):
        reload()
        barrier = threading.Barrier(len(kinds) * 2)
        errors: list[BaseException] = []

        def first_use(
            kind: str, barrier: threading.Barrier = barrier, errors: list = errors
        ) -> None:
            try:
                barrier.wait()
                registries[kind].list()
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=first_use, args=(kind,), daemon=True) for kind in kinds * 2
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not [t for t in threads if t.is_alive()], "discovery hung"
        assert errors == []
        problems = {p.message for r in registries.values() for p in r.problems()}
        assert len([m for m in problems if fault.distribution in m]) == 1
        report.record("faults_injected")
        report.record("runs_survived")
