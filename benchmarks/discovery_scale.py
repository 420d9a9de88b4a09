"""Section 2, discovery at scale: 100, 1,000 and 10,000 installed plugin distributions.

For each size, :mod:`benchmarks.fake_dists` writes the distributions into a
folder that every child process gets on ``PYTHONPATH``; each task then runs
in a fresh interpreter (``benchmarks/probes/discover.py``), interleaved with
the others, in a bare virtualenv that holds only the libraries measured
(:mod:`benchmarks.clean_env`), so that every tool sees the N distributions
and nothing else. Each run reports two times: the whole process (launch to exit,
what a user's command start sees) and the discovery step inside it (from
importing the library to holding the keys). The tasks:

- codex-ml: list every key of all six registries, with a warm discovery index
  and with a cold one (a new, empty ``CODEX_ML_CACHE_DIR`` every run, so the
  index is built and written); the same in the project's virtualenv, whose
  two example hook plugins bring pluggy in; the first ``get`` of one key;
- pluggy: ``load_setuptools_entrypoints`` and calling the hooks (eager);
- stevedore: ``ExtensionManager`` over both groups (eager) and a
  ``DriverManager`` for one key, both reading stevedore's entry-point cache
  (warmed first, in a private ``XDG_CACHE_HOME``);
- catalogue: ``get_all`` of both registries with ``entry_points=True``, and
  ``get`` of one key;
- the raw ``importlib.metadata.entry_points()`` scan, and an empty process.

Then a distribution is installed and removed next to the others, and a new
process lists after each change: the change must be seen at once.
"""

from __future__ import annotations

import itertools
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks import clean_env, fake_dists
from benchmarks.measure import Sample, child_env, probe, round_robin, run_process, timed_probe
from benchmarks.report import Goal, Section, ms, raw_runs, table

#: task -> (label, whether the task takes the key, the number of plugin modules it must import)
TASKS: dict[str, tuple[str, bool, str]] = {
    "codex-list": ("codex-ml: list all six registries (warm index)", False, "none"),
    "codex-list-cold": ("codex-ml: list all six registries (cold: index built)", False, "none"),
    "codex-list-hooks": (
        "codex-ml: list all six, project venv (+ 2 example hook plugins, so pluggy)",
        False,
        "none",
    ),
    "codex-get": ("codex-ml: first `get` of one key", True, "one"),
    "pluggy": ("pluggy: load_setuptools_entrypoints + hooks", False, "all"),
    "stevedore-extensions": ("stevedore: ExtensionManager, cached (both groups)", False, "all"),
    "stevedore-driver": ("stevedore: DriverManager, cached (one key)", True, "one"),
    "catalogue": ("catalogue: get_all with entry points (both groups)", False, "all"),
    "catalogue-get": ("catalogue: get of one key", True, "one"),
    "importlib-metadata": ("raw importlib.metadata.entry_points()", False, "none"),
    "pluggy-import": ("floor: a process that only imports pluggy", False, "none"),
    "empty": ("floor: an empty process (the probe harness alone)", False, "none"),
}


#: Tasks run with the project's own interpreter (its virtualenv), not the bare one.
IN_PROJECT_VENV = ("codex-list-hooks",)


def _variants(site: Path, workdir: Path, n: int) -> dict[str, Any]:
    key = fake_dists.names(n // 2)["metric"]
    bare_python = clean_env.make(workdir / "bare-venv")
    project_env = child_env(
        pythonpath=[str(site)],
        extra={
            "CODEX_ML_CACHE_DIR": str(workdir / f"index-{n}"),
            "XDG_CACHE_HOME": str(workdir / f"xdg-{n}"),  # stevedore's cache lives under it
        },
    )
    # codex-ml is installed in the bare environment: only the synthetic folder is added.
    bare_env = {**project_env, "PYTHONPATH": str(site)}
    fresh = itertools.count()

    def cold_env() -> Mapping[str, str]:
        return {**bare_env, "CODEX_ML_CACHE_DIR": str(workdir / f"cold-index-{n}-{next(fresh)}")}

    commands, variants = {}, {}
    for task, (_, takes_key, _) in TASKS.items():
        name = "codex-list" if task.startswith("codex-list") else task
        in_project = task in IN_PROJECT_VENV
        args = (name, key) if takes_key else (name,)
        argv = probe("discover", *args, python=sys.executable if in_project else bare_python)
        commands[task] = (argv, project_env if in_project else bare_env)
        variants[task] = timed_probe(
            argv, cold_env if task == "codex-list-cold" else commands[task][1]
        )
    return {"commands": commands, "variants": variants}


def _warm(commands: Mapping[str, tuple[list[str], Mapping[str, str]]]) -> None:
    """Build codex-ml's indexes and stevedore's cache, and check the indexes are then used."""
    listings = [commands["codex-list"], commands["codex-list-hooks"]]
    for argv, env in [*listings, commands["stevedore-driver"]]:
        run_process(argv, env)
    for argv, env in listings:
        if not run_process(argv, env).payload()["from_index"]:
            raise AssertionError("the codex-ml discovery index was not used on the second run")


def _check(task: str, sample: Sample, n: int) -> None:
    """Each task really did what it is labelled as doing."""
    expected = {"none": 0, "one": 1, "all": n}[TASKS[task][2]]
    for details in sample.details:
        if details["plugin_modules"] != expected:
            raise AssertionError(
                f"{task} imported {details['plugin_modules']} plugin modules, expected {expected}"
            )
        if task.startswith("codex-list") and details["keys"] < 2 * n:
            raise AssertionError(f"{task} listed {details['keys']} keys, expected >= {2 * n}")
        if task in ("codex-list", "codex-list-hooks") and not details["from_index"]:
            raise AssertionError(f"the warm codex-ml listing ({task}) did not read its index")
        if task.startswith("codex-list") and details["pluggy_imported"] != (
            task in IN_PROJECT_VENV
        ):
            raise AssertionError(
                f"{task}: pluggy imported = {details['pluggy_imported']}; a codex-ml listing "
                "imports pluggy exactly when a hook plugin is installed"
            )
        if task == "codex-list-cold" and details["from_index"]:
            raise AssertionError("the cold codex-ml listing read an index")


def measure_size(n: int, workdir: Path, repeats: int) -> dict[str, Sample]:
    site = fake_dists.make_site(workdir / f"site-{n}", n)
    setup = _variants(site, workdir, n)
    _warm(setup["commands"])
    samples = round_robin(setup["variants"], repeats)
    for task, sample in samples.items():
        _check(task, sample, n)
        sample.name = f"{TASKS[task][0]} [{n}]"
    shutil.rmtree(site)
    return samples


def freshness(workdir: Path, *, wait_for_index: bool) -> list[list[str]]:
    """Install and remove a distribution; a new process must see each change at once."""
    site = fake_dists.make_site(workdir / "site-freshness", 20)
    env = child_env(
        pythonpath=[str(site)],
        extra={"CODEX_ML_CACHE_DIR": str(workdir / "index-freshness")},
    )
    newcomer = "bench-newcomer"
    argv = probe("discover", "codex-list", newcomer)

    def listing(step: str) -> list[str]:
        run = run_process(argv, env)
        payload = run.payload()
        return [
            step,
            "yes" if payload["has_key"] else "no",
            "index" if payload["from_index"] else "rescan",
            ms(run.wall_s),
        ]

    rows = [listing("before: 20 distributions, index warm")]
    rows.append(listing("again (index used)"))
    entry_points = fake_dists.entry_points_text(0, metric_key=newcomer)
    dist_info = fake_dists.write_dist_info(site, "bench-newcomer", "2.0", entry_points)
    rows.append(listing("installed bench-newcomer 2.0, first listing"))
    rows.append(listing("again, within 2 s of the install (index not yet trusted)"))
    if wait_for_index:
        time.sleep(2.5)
        rows.append(listing("rebuilt after 2.5 s"))
        rows.append(listing("again (index used)"))
    shutil.rmtree(dist_info)
    rows.append(listing("removed bench-newcomer, first listing"))
    expected = ["no", "no", "yes", "yes"] + (["yes", "yes"] if wait_for_index else []) + ["no"]
    seen = [row[1] for row in rows]
    if seen != expected:
        raise AssertionError(f"install/remove not seen at once: {rows}")
    shutil.rmtree(site)
    return rows


def run(workdir: Path, *, sizes: Sequence[int], repeats: Mapping[int, int], quick: bool) -> Section:
    section = Section("2. Discovery at scale")
    by_size = {n: measure_size(n, workdir, repeats[n]) for n in sizes}
    for n, samples in by_size.items():
        pluggy_ = samples["pluggy"]
        rows = []
        for task, sample in samples.items():
            step = sample.median_of("step_s")
            rows.append(
                [
                    TASKS[task][0],
                    ms(sample.median),
                    ms(step),
                    ms(sample.median_of("cpu_s")),
                    f"{pluggy_.median / sample.median:.1f}x",
                    "-" if task == "empty" else f"{pluggy_.median_of('step_s') / step:.1f}x",
                    sample.details[0]["plugin_modules"],
                    sample.details[0]["keys"],
                ]
            )
        section.add(
            f"**{n:,} distributions** ({repeats[n]} runs each, interleaved; medians). "
            f"The speed-up columns are pluggy's time divided by the task's."
        )
        section.add(
            table(
                [
                    "task",
                    "process ms",
                    "discovery step ms",
                    "process CPU ms",
                    "pluggy / this (process)",
                    "pluggy / this (step)",
                    "plugin modules imported",
                    "keys",
                ],
                rows,
            )
        )
    section.add(
        "Plugin modules imported counts the `bench_plugin_*` modules (one per distribution) in "
        "`sys.modules` after the task; pluggy also imports one `bench_hooks_*` module per "
        "distribution (its hook plugin)."
    )
    fresh_rows = freshness(workdir, wait_for_index=not quick)
    section.add(
        "**Installing and removing a distribution** (a new `codex-ml` listing process after each "
        "step; the index is not trusted for paths changed in the last 2 s):"
    )
    section.add(table(["step", "bench-newcomer listed", "scan", "process ms"], fresh_rows))
    for n, samples in by_size.items():
        section.add(f"Raw runs at {n:,} distributions:")
        section.add(raw_runs(list(samples.values())))
    _goals(section, by_size)
    section.raw = {
        "sizes": {
            str(n): [s.to_json() for s in samples.values()] for n, samples in by_size.items()
        },
        "freshness": fresh_rows,
    }
    return section


def _goals(section: Section, by_size: Mapping[int, Mapping[str, Sample]]) -> None:
    goal_size = 1000 if 1000 in by_size else min(by_size)
    s = by_size[goal_size]
    codex, pluggy_ = s["codex-list"], s["pluggy"]
    section.goals += [
        Goal(
            f"{goal_size:,} dists: pluggy eager / codex-ml listing, discovery step",
            pluggy_.median_of("step_s") / codex.median_of("step_s"),
            10,
            ">=",
        ),
        Goal(
            f"{goal_size:,} dists: pluggy eager / codex-ml listing, whole process",
            pluggy_.median / codex.median,
            10,
            ">=",
        ),
        Goal(
            f"{goal_size:,} dists: codex-ml listing / stevedore cached DriverManager (process)",
            codex.median / s["stevedore-driver"].median,
            1,
            "<=",
        ),
        Goal(
            f"{goal_size:,} dists: plugin modules one codex-ml `get` imports",
            s["codex-get"].details[0]["plugin_modules"],
            1,
            "<=",
            unit="",
        ),
    ]
    top = max(by_size)
    t = by_size[top]
    section.goals.append(
        Goal(
            f"{top:,} dists: codex-ml listing / raw importlib.metadata scan (discovery step)",
            t["codex-list"].median_of("step_s") / t["importlib-metadata"].median_of("step_s"),
            0.25,
            "<=",
        )
    )
