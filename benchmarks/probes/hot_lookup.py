"""Per-call cost of looking up a loaded entry; prints JSON (nanoseconds per call).

Usage: ``python hot_lookup.py SECONDS REPEATS``, with the synthetic
distributions of ``benchmarks/fake_dists.py`` on ``sys.path``. Every
statement is called once untimed (which loads the entry, so only the hot
path is measured), then timed with ``timeit`` ``REPEATS`` times, each timing
as many calls as fill about ``SECONDS``. The times include ``timeit``'s own
loop (the ``pass`` row).
"""

import json
import sys
import timeit

import catalogue
import pluggy
from stevedore import DriverManager, ExtensionManager

from codex_ml.registry import get_metric, metric_registry

KEY = "bench-metric-00007"  # provided by a synthetic distribution's entry point
MODULE = "bench_plugin_00007"
GROUP = "bench_metrics"


def pluggy_manager():
    """A pluggy hook with 10 implementations, each a plugin answering for its own keys."""
    spec = pluggy.HookspecMarker("benchhot")
    impl = pluggy.HookimplMarker("benchhot")

    class Specs:
        @spec
        def bench_lookup(self, key): ...

    class Plugin:
        def __init__(self, table):
            self.table = table

        @impl
        def bench_lookup(self, key):
            return self.table.get(key)

    manager = pluggy.PluginManager("benchhot")
    manager.add_hookspecs(Specs)
    factory = metric_registry.get(KEY)
    manager.register(Plugin({KEY: factory}))
    for i in range(9):
        manager.register(Plugin({f"other-{i}": factory}))
    return manager


def statements():
    """name -> (statement, globals): the contenders, each set up and called once."""
    factory = metric_registry.get(KEY)
    table = {KEY: factory}
    in_memory = catalogue.create("benchhot", "metrics")
    in_memory.register(KEY, func=factory)
    with_entry_points = catalogue.create("bench", "metrics", entry_points=True)
    extensions = ExtensionManager(namespace=GROUP)
    driver = DriverManager(namespace=GROUP, name=KEY)
    names = {
        "key": KEY,
        "messy_key": f"  {KEY.upper()} ",
        "table": table,
        "metric_registry": metric_registry,
        "get_metric": get_metric,
        "manager": pluggy_manager(),
        "in_memory": in_memory,
        "with_entry_points": with_entry_points,
        "extensions": extensions,
        "driver": driver,
    }
    return names, {
        "pass (timeit loop)": "pass",
        "dict: table[key.strip().lower()]": "table[key.strip().lower()]",
        "codex-ml: metric_registry.get(key)": "metric_registry.get(key)",
        "codex-ml: metric_registry.get(' KEY ') (un-normalised)": "metric_registry.get(messy_key)",
        "dict + call: table[key.strip().lower()]()": "table[key.strip().lower()]()",
        "codex-ml: get_metric(key) (looks up and calls the factory)": "get_metric(key)",
        "pluggy: hook call, 10 implementations": "manager.hook.bench_lookup(key=key)",
        "catalogue: get (registered in-process)": "in_memory.get(key)",
        "catalogue: get (entry_points=True)": "with_entry_points.get(key)",
        "stevedore: extensions[key].plugin (cached)": "extensions[key].plugin",
        "stevedore: DriverManager.driver (cached)": "driver.driver",
    }


def main():
    seconds, repeats = float(sys.argv[1]), int(sys.argv[2])
    names, stmts = statements()
    results, numbers = {}, {}
    for label, stmt in stmts.items():
        exec(stmt, names)  # the first call loads; only hot calls are timed
        timer = timeit.Timer(stmt, globals=names)
        per_call = timer.timeit(10) / 10
        number = max(10, int(seconds / max(per_call, 1e-9)))
        results[label] = [t / number * 1e9 for t in timer.repeat(repeats, number)]
        numbers[label] = number
    assert MODULE in sys.modules, "the entry looked up should come from a synthetic distribution"
    print(json.dumps({"ns_per_call": results, "calls_per_timing": numbers}))


if __name__ == "__main__":
    main()
