"""Section 3, hot lookup: the per-call cost of using an entry that is already loaded.

``benchmarks/probes/hot_lookup.py`` runs in a fresh interpreter with 100
synthetic distributions installed (so catalogue and stevedore find their
entry points), loads one entry in every library, then times each lookup with
``timeit``. Each figure is the median over the repeats of the per-call time.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks import fake_dists
from benchmarks.measure import child_env, probe, run_process
from benchmarks.report import Goal, Section, table

DICT = "dict: table[key.strip().lower()]"
DICT_CALL = "dict + call: table[key.strip().lower()]()"
GET = "codex-ml: metric_registry.get(key)"
GET_METRIC = "codex-ml: get_metric(key) (looks up and calls the factory)"


def run(workdir: Path, *, seconds: float, repeats: int) -> Section:
    site = fake_dists.make_site(workdir / "site-hot", 100)
    env = child_env(
        pythonpath=[str(site)],
        extra={"CODEX_ML_CACHE_DIR": str(workdir / "index-hot"), "XDG_CACHE_HOME": str(workdir)},
    )
    payload = run_process(probe("hot_lookup", str(seconds), str(repeats)), env).payload()
    results: dict[str, list[float]] = payload["ns_per_call"]
    calls = payload["calls_per_timing"]
    median = {name: statistics.median(values) for name, values in results.items()}

    section = Section("3. Hot lookup")
    rows = [
        [
            name,
            f"{median[name]:.1f}",
            f"{min(values):.1f}",
            f"{median[name] / median[DICT]:.2f}x",
            f"{median[name] / median[DICT_CALL]:.2f}x",
            f"{calls[name]:,}",
        ]
        for name, values in results.items()
    ]
    section.add(
        f"{repeats} timings of about {seconds * 1000:g} ms each; ns per call (median and best of "
        "the timings), including timeit's loop (the `pass` row). `key` is an entry-point key of a "
        "synthetic distribution, already loaded; the factory call is the same function in "
        "both `call` rows."
    )
    section.add(
        table(
            [
                "lookup",
                "median ns/call",
                "best ns/call",
                "vs dict",
                "vs dict + call",
                "calls/timing",
            ],
            rows,
        )
    )
    section.goals += [
        Goal(
            "hot lookup: metric_registry.get(key) vs dict lookup",
            median[GET] / median[DICT],
            3,
            "<=",
        ),
        Goal(
            "hot lookup: get_metric(key) vs dict lookup + the same factory call",
            median[GET_METRIC] / median[DICT_CALL],
            3,
            "<=",
        ),
    ]
    section.raw = {"ns_per_call": results, "calls_per_timing": calls}
    return section
