"""One discovery task in a fresh interpreter; prints what it found and cost as JSON.

Usage: ``python discover.py TASK [KEY]``; ``codex-list KEY`` also reports
whether KEY is listed. The timed step runs from importing
the library to holding the keys (or the one factory asked for), so a library
that scans at import time (catalogue) is charged for it. The payload reports
how many synthetic plugin modules (``bench_*``) the process imported.

This file imports only ``sys`` and ``time``, before and after the step, so
every task pays the same, smallest harness cost: the payload is printed as a
Python literal (``repr``), because importing ``json`` to print it would add
several milliseconds to every process, and more to a task that does not
import ``re`` itself than to one that does.
"""

import sys
import time

METRICS, MODELS = "bench_metrics", "bench_models"  # the baselines' groups (fake_dists.py)


def codex_list(key):
    import codex_ml.registry as registry

    return sum(len(r.list()) for r in registry.registries.values())


def codex_get(key):
    from codex_ml.registry import metric_registry

    metric_registry.get(key)
    return 1


def pluggy_eager(key):
    import pluggy

    spec = pluggy.HookspecMarker("bench")

    class Specs:
        @spec
        def bench_register_metrics(self): ...

        @spec
        def bench_register_models(self): ...

    manager = pluggy.PluginManager("bench")
    manager.add_hookspecs(Specs)
    manager.load_setuptools_entrypoints("bench.plugins")
    found = manager.hook.bench_register_metrics() + manager.hook.bench_register_models()
    return sum(len(result) for result in found)


def stevedore_extensions(key):
    from stevedore import ExtensionManager

    return sum(len(ExtensionManager(namespace=group).names()) for group in (METRICS, MODELS))


def stevedore_driver(key):
    from stevedore import DriverManager

    driver = DriverManager(namespace=METRICS, name=key).driver
    return int(driver is not None)


def catalogue_all(key):
    import catalogue

    return sum(
        len(catalogue.create("bench", kind, entry_points=True).get_all())
        for kind in ("metrics", "models")
    )


def catalogue_get(key):
    import catalogue

    catalogue.create("bench", "metrics", entry_points=True).get(key)
    return 1


def importlib_metadata_scan(key):
    import importlib.metadata

    found = importlib.metadata.entry_points()
    return sum(len(found.select(group=g)) for g in ("codex_ml.metrics", "codex_ml.models"))


def empty(key):
    return 0


def pluggy_import(key):
    import pluggy  # noqa: F401

    return 0


TASKS = {
    "empty": empty,
    "pluggy-import": pluggy_import,
    "codex-list": codex_list,
    "codex-get": codex_get,
    "pluggy": pluggy_eager,
    "stevedore-extensions": stevedore_extensions,
    "stevedore-driver": stevedore_driver,
    "catalogue": catalogue_all,
    "catalogue-get": catalogue_get,
    "importlib-metadata": importlib_metadata_scan,
}


def main():
    task, key = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
    started = time.perf_counter()
    keys = TASKS[task](key)
    step = time.perf_counter() - started
    payload = {
        "task": task,
        "step_s": step,
        "keys": keys,
        "plugin_modules": sum(1 for name in sys.modules if name.startswith("bench_plugin_")),
        "hook_modules": sum(1 for name in sys.modules if name.startswith("bench_hooks_")),
        "heavy_modules": [m for m in ("torch", "transformers", "hydra") if m in sys.modules],
        "pluggy_imported": "pluggy" in sys.modules,
    }
    if task.startswith("codex"):
        from codex_ml.plugins.discovery import installed_entry_points
        from codex_ml.registry import metric_registry

        payload["from_index"] = installed_entry_points().from_index
        if task == "codex-list" and key:
            payload["has_key"] = key in metric_registry
    print(repr(payload))


if __name__ == "__main__":
    main()
