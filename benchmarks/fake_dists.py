"""Synthetic installed plugin distributions, for discovery at scale.

``make_site(folder, count)`` writes ``count`` distributions into one folder
that a benchmark puts on ``sys.path`` (through ``PYTHONPATH``), as a
``pip install --target`` would lay them out. Distribution ``i`` has:

- ``bench_plugin_<i>.py``: two factories, ``build_metric`` and ``build_model``;
- ``bench_hooks_<i>.py``: the same two as pluggy ``@hookimpl`` functions (a
  pluggy plugin), importing them from ``bench_plugin_<i>``;
- ``bench_plugin_<i>-1.0.dist-info/`` with ``METADATA`` and ``entry_points.txt``
  declaring the component in every library's own form: codex-ml's component
  groups, pluggy's plugin group, and one group per kind that stevedore
  (a namespace) and catalogue (``create("bench", "metrics", entry_points=True)``)
  share.

So every tool finds the same 2 x ``count`` keys in the same files; loading
one key imports one ``bench_plugin_*`` module, and an eager tool imports all.
The modules are byte-compiled and every file is given a modification time a
minute in the past, as an installation made earlier would have: nothing under
the folder changes while the benchmarks run.
"""

from __future__ import annotations

import os
import py_compile
import shutil
import time
from pathlib import Path

#: Entry-point groups of the baselines (codex-ml's come from its table of kinds).
PLUGGY_GROUP = "bench.plugins"
PLUGGY_PROJECT = "bench"
BASELINE_GROUPS = {"metric": "bench_metrics", "model": "bench_models"}
#: Every module the synthetic distributions contain starts with this.
MODULE_PREFIX = "bench_"

_COMPONENT_MODULE = '''\
"""Synthetic plugin {i} of the codex-ml benchmarks: two factories, nothing imported."""


def build_metric(**options):
    """Metric {i}: returns its options."""
    return ("metric", {i}, options)


def build_model(**options):
    """Model {i}: returns its options."""
    return ("model", {i}, options)
'''

_HOOKS_MODULE = '''\
"""Synthetic pluggy plugin {i}: registers plugin {i}'s factories through hooks."""

import pluggy

from {module} import build_metric, build_model

hookimpl = pluggy.HookimplMarker("{project}")


@hookimpl
def bench_register_metrics():
    return {{"{metric}": build_metric}}


@hookimpl
def bench_register_models():
    return {{"{model}": build_model}}
'''


def names(i: int) -> dict[str, str]:
    """The distribution, module and key names of synthetic distribution ``i``."""
    return {
        "distribution": f"bench-plugin-{i:05d}",
        "module": f"bench_plugin_{i:05d}",
        "hooks": f"bench_hooks_{i:05d}",
        "metric": f"bench-metric-{i:05d}",
        "model": f"bench-model-{i:05d}",
    }


def entry_points_text(i: int, *, metric_key: str | None = None) -> str:
    """The ``entry_points.txt`` of distribution ``i`` (``metric_key`` renames its metric)."""
    n = names(i)
    metric = metric_key or n["metric"]
    module = n["module"]
    lines = [
        "[codex_ml.metrics]",
        f"{metric} = {module}:build_metric",
        "",
        "[codex_ml.models]",
        f"{n['model']} = {module}:build_model",
        "",
        f"[{PLUGGY_GROUP}]",
        f"{n['hooks']} = {n['hooks']}",
        "",
        f"[{BASELINE_GROUPS['metric']}]",
        f"{metric} = {module}:build_metric",
        "",
        f"[{BASELINE_GROUPS['model']}]",
        f"{n['model']} = {module}:build_model",
        "",
    ]
    return "\n".join(lines)


def write_dist_info(
    folder: Path, dist_name: str, version: str, entry_points: str, *, mtime: float | None = None
) -> Path:
    """One ``<name>-<version>.dist-info`` directory, as an installer writes it."""
    dist_info = folder / f"{dist_name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(entry_points, encoding="utf-8")
    (dist_info / "INSTALLER").write_text("codex-ml-benchmarks\n", encoding="utf-8")
    if mtime is not None:
        _set_mtimes(dist_info, mtime)
    return dist_info


def make_site(folder: Path, count: int) -> Path:
    """Write ``count`` synthetic distributions into ``folder`` (emptied first)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    past = time.time() - 60.0
    modules = []
    for i in range(count):
        n = names(i)
        component = folder / f"{n['module']}.py"
        component.write_text(_COMPONENT_MODULE.format(i=i), encoding="utf-8")
        hooks = folder / f"{n['hooks']}.py"
        hooks.write_text(
            _HOOKS_MODULE.format(
                i=i,
                module=n["module"],
                project=PLUGGY_PROJECT,
                metric=n["metric"],
                model=n["model"],
            ),
            encoding="utf-8",
        )
        modules += [component, hooks]
        write_dist_info(folder, n["distribution"], "1.0", entry_points_text(i))
    # Sources get their old mtime before compiling, so the .pyc files record it and stay valid.
    for module in modules:
        os.utime(module, (past, past))
        py_compile.compile(str(module), doraise=True)
    _set_mtimes(folder, past)
    return folder


def _set_mtimes(root: Path, mtime: float) -> None:
    """Give ``root`` and everything under it one modification time, deepest first."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (mtime, mtime))
    os.utime(root, (mtime, mtime))
