"""Entry-point discovery: one scan per process, the first of a twice-seen distribution wins,
the persistent index, and keys that two distributions claim.

Distributions are installed by hand (a ``*.dist-info`` or ``*.egg-info`` folder
with ``METADATA`` and ``entry_points.txt``) in temporary folders that a fresh
interpreter puts on ``sys.path``, and the results are checked against
:mod:`importlib.metadata` itself.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest
from hypothesis import given
from hypothesis import strategies as st

import codex_ml.registry as facade
from codex_ml.plugins import discovery
from codex_ml.plugins.discovery import installed_entry_points, normalize_distribution_name

MakeDistribution = Callable[..., Path]
RunPython = Callable[..., "object"]

GROUPS = {
    "tokenizer": "codex_ml.tokenizers",
    "model": "codex_ml.models",
    "metric": "codex_ml.metrics",
    "data_loader": "codex_ml.data_loaders",
    "trainer": "codex_ml.trainers",
    "reward_model": "codex_ml.reward_models",
    "callback": "codex_ml.callbacks",
    "optimizer": "codex_ml.optimizers",
    "scheduler": "codex_ml.schedulers",
    "adapter": "codex_ml.adapters",
}


def _last_json(result: object) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[attr-defined]


def backdate(*roots: Path, seconds: float = 60.0) -> None:
    """Set the mtime of ``roots`` and everything under them into the past.

    The index never trusts a path modified in the last few seconds (the racy
    timestamp rule), so what a test has just written must look old before an
    index built over it is kept.
    """
    past = time.time() - seconds
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in [*dirs, *files]:
                os.utime(os.path.join(folder, name), (past, past))
        os.utime(root, (past, past))


# -- the shared scan, in this process --------------------------------------------------------------


def test_scan_agrees_with_importlib_metadata() -> None:
    def normal(records: object) -> set[tuple[str, str, str, str]]:
        return set(records)  # type: ignore[arg-type]

    ours = normal(
        (r.group, r.name, r.value, normalize_distribution_name(r.distribution))
        for r in installed_entry_points().entries
        if r.group in [*GROUPS.values(), "codex_ml.plugins"]
    )
    theirs = normal(
        (ep.group, ep.name, ep.value, normalize_distribution_name(ep.dist.name))
        for group in [*GROUPS.values(), "codex_ml.plugins"]
        for ep in importlib.metadata.entry_points(group=group)
    )
    assert ours == theirs
    names = {entry[1] for entry in ours}
    assert {"toy_tokenizer", "toy_metric", "toy_hooks", "broken_hooks"} <= names


def test_one_scan_serves_every_group_and_every_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[int] = []
    real_build = discovery._build

    def counting_build(paths: list[str]) -> object:
        builds.append(1)
        return real_build(paths)

    def no_rescan(*args: object, **kwargs: object) -> None:
        raise AssertionError("pluggy's load_setuptools_entrypoints rescans every distribution")

    try:
        with monkeypatch.context() as patch:
            patch.setenv("CODEX_ML_DISCOVERY_CACHE", "0")  # measure the scan, not the index
            patch.setattr(discovery, "_build", counting_build)
            patch.setattr(pluggy.PluginManager, "load_setuptools_entrypoints", no_rescan)
            facade.reload()
            for registry in facade.registries.values():
                for entry in registry.entries():
                    assert entry.as_dict()["key"]
            facade.get_tokenizer("toy_tokenizer")
            facade.get_metric("toy_length_ratio")
            facade.get_data_loader("toy_data_loader", n=1)
            assert "toy_metric" in facade.metric_registry
            assert builds == [1]
    finally:
        facade.reload()


# -- hand-installed distributions, in fresh interpreters ------------------------------------------

DESCRIBE_KEY = """
import importlib.metadata, json, sys
import codex_ml.registry as r

def view(kind, key):
    reg = r.get_registry(kind)
    info = reg.describe(key)
    group = reg.entry_point_group
    return {
        "target": info.target, "version": info.version, "status": info.status,
        "providers": len(info.providers),
        "importlib": [ep.value for ep in importlib.metadata.entry_points(group=group, name=key)],
        "built": reg.get(key)(),
        "problems": [p.message for p in reg.problems() if "twice" in p.message],
    }

def both():
    return {"metric": view("metric", "demo_twice"),
            "tokenizer": view("tokenizer", "demo_twice_tok")}
"""


def _twice(make_distribution: MakeDistribution, folder: Path, version: str, how: str) -> None:
    tag = folder.name
    make_distribution(
        folder,
        "demo-twice",
        version,
        metadata=how,
        entry_points={
            "codex_ml.metrics": {"demo_twice": f"twice_{tag}:build"},
            "codex_ml.plugins": {"twice_hooks": f"twice_hooks_{tag}"},
        },
        modules={
            f"twice_{tag}": f"def build():\n    return {tag!r}\n",
            f"twice_hooks_{tag}": (
                "from codex_ml.plugins import hookimpl\n\n@hookimpl\n"
                "def codex_ml_register_tokenizers():\n"
                f"    return {{'demo_twice_tok': lambda: {tag!r}}}\n"
            ),
        },
    )


def test_distribution_seen_twice_counts_once_and_the_first_on_sys_path_wins(
    tmp_path: Path, make_distribution: MakeDistribution, run_python: RunPython
) -> None:
    # An editable install's in-tree egg-info in one folder, its dist-info in another.
    egg, wheel = tmp_path / "egg", tmp_path / "wheel"
    _twice(make_distribution, egg, "0.1", "egg-info")
    _twice(make_distribution, wheel, "0.2", "dist-info")
    script = (
        DESCRIBE_KEY
        + f"""
first = both()
sys.path.remove({str(egg)!r}); sys.path.insert(1, {str(egg)!r})  # now the wheel comes first
r.reload()
second = both()
print(json.dumps([first, second]))
"""
    )
    first, second = _last_json(run_python(script, sys_path=[egg, wheel]))
    assert first["metric"] == {
        "target": "twice_egg:build",
        "version": "0.1",
        "status": "lazy",  # described before its first use
        "providers": 1,
        "importlib": ["twice_egg:build"],  # importlib.metadata agrees: one distribution
        "built": "egg",
        "problems": [],
    }
    assert first["tokenizer"]["built"] == "egg"  # the hook plugin is not registered twice
    assert first["tokenizer"]["problems"] == []
    assert second["metric"]["target"] == second["metric"]["importlib"][0] == "twice_wheel:build"
    assert (second["metric"]["version"], second["metric"]["built"]) == ("0.2", "wheel")
    assert second["tokenizer"]["built"] == "wheel"


def test_dist_info_beats_egg_info_in_one_folder(
    tmp_path: Path, make_distribution: MakeDistribution, run_python: RunPython
) -> None:
    site = tmp_path / "site"
    for how, target in (("egg-info", "stale_mod:build"), ("dist-info", "fresh_mod:build")):
        make_distribution(
            site,
            "demo-same",
            "1.0",
            metadata=how,
            entry_points={"codex_ml.metrics": {"demo_same": target}},
        )
    script = """
import importlib.metadata, json
import codex_ml.registry as r
eps = importlib.metadata.entry_points(group="codex_ml.metrics", name="demo_same")
info = r.metric_registry.describe("demo_same")
print(json.dumps([info.target, info.status, [ep.value for ep in eps]]))
"""
    target, status, importlib_view = _last_json(run_python(script, sys_path=[site]))
    assert target == "fresh_mod:build"
    assert status == "lazy"
    assert importlib_view == [target]


def test_every_group_is_discovered_listed_without_import_and_loaded_on_use(
    tmp_path: Path, make_distribution: MakeDistribution, run_python: RunPython
) -> None:
    site = tmp_path / "site"
    make_distribution(
        site,
        "demo-every-kind",
        "2.0",
        entry_points={
            group: {f"demo_{kind}": f"every_{kind}:build"} for kind, group in GROUPS.items()
        },
        modules={f"every_{kind}": f"def build():\n    return {kind!r}\n" for kind in GROUPS},
    )
    script = """
import json, sys
import codex_ml.registry as r
out = {}
for kind, reg in r.registries.items():
    key = f"demo_{kind}"
    info = reg.describe(key)
    listed = key in getattr(r, f"list_{kind}s")()
    imported_before = f"every_{kind}" in sys.modules
    built = getattr(r, f"get_{kind}")(key)
    out[kind] = [listed, info.source, info.distribution, info.version, imported_before, built]
print(json.dumps(out))
"""
    out = _last_json(run_python(script, sys_path=[site]))
    assert out == {
        kind: [True, "entry-point", "demo-every-kind", "2.0", False, kind] for kind in GROUPS
    }


def test_entry_point_extras_are_not_part_of_the_target(
    tmp_path: Path, make_distribution: MakeDistribution, run_python: RunPython
) -> None:
    # "module:attr [extra, ...]" is valid entry-point syntax: the extras name optional
    # dependencies of the distribution; importlib.metadata loads such an entry point.
    site = tmp_path / "site"
    make_distribution(
        site,
        "demo-extras",
        "1.0",
        entry_points={
            "codex_ml.metrics": {"demo_extras": "extras_mod:build [fast, gpu]"},
            "codex_ml.plugins": {"extras_hooks": "extras_hooks_mod [fast]"},
        },
        modules={
            "extras_mod": 'def build():\n    """Extras."""\n    return "metric"\n',
            "extras_hooks_mod": (
                "from codex_ml.plugins import hookimpl\n\n@hookimpl\n"
                "def codex_ml_register_tokenizers():\n"
                "    return {'demo_extras_tok': lambda: 'tokenizer'}\n"
            ),
        },
    )
    script = """
import importlib.metadata, json
import codex_ml.registry as r
(ep,) = importlib.metadata.entry_points(group="codex_ml.metrics", name="demo_extras")
info = r.metric_registry.describe("demo_extras")
print(json.dumps({
    "importlib": [ep.load()(), ep.extras],
    "target": info.target,
    "line": info.line,
    "metric": r.get_metric("demo_extras"),
    "tokenizer": r.get_tokenizer("demo_extras_tok"),
    "problems": [p.message for p in r.tokenizer_registry.problems()],
}))
"""
    assert _last_json(run_python(script, sys_path=[site])) == {
        "importlib": ["metric", ["fast", "gpu"]],
        "target": "extras_mod:build",
        "line": 1,
        "metric": "metric",
        "tokenizer": "tokenizer",
        "problems": [],
    }


def test_key_claimed_by_two_distributions_is_listed_but_ambiguous(
    tmp_path: Path, make_distribution: MakeDistribution, run_python: RunPython
) -> None:
    site = tmp_path / "site"
    for dist, key, module in (
        ("demo-one", "shared_metric", "one"),
        ("demo-two", "Shared_Metric", "two"),
    ):
        make_distribution(
            site,
            dist,
            "1.0",
            entry_points={"codex_ml.metrics": {key: f"{module}_mod:build"}},
            modules={f"{module}_mod": f"def build():\n    return lambda p, t: {module!r}\n"},
        )
    script = """
import json, os, re
import codex_ml.registry as r
out = {"listed": r.list_metrics().count("shared_metric")}
out["status"] = r.metric_registry.describe("shared_metric").status
out["ambiguous"] = r.metric_registry.ambiguous()
try:
    r.get_metric("shared_metric")
except r.RegistryConflictError as exc:
    out["error"] = str(exc)
    out["providers"] = exc.providers
with r.isolated():
    r.register_metric("shared_metric", lambda: "mine", override=True)
    out["override"] = r.get_metric("shared_metric")
out["after_isolation"] = r.metric_registry.describe("shared_metric").status
# Follow the error's own advice: block the distribution it names.
advice = re.search(r"CODEX_ML_BLOCK_PLUGINS=([\\w.-]+)", out["error"])
os.environ["CODEX_ML_BLOCK_PLUGINS"] = advice[1]
r.reload()
out["advised"] = r.get_metric("shared_metric")(None, None)
print(json.dumps(out))
"""
    out = _last_json(run_python(script, sys_path=[site]))
    assert out["listed"] == 1
    assert out["status"] == "ambiguous"
    assert list(out["ambiguous"]) == ["shared_metric"]
    error = out["error"]
    for expected in ("demo-one", "demo-two", "one_mod:build", "two_mod:build", "override=True"):
        assert expected in error
    assert len(out["providers"]) == 2
    assert out["override"] == "mine"
    assert out["after_isolation"] == "ambiguous"
    assert out["advised"] in ("one", "two")


# -- the persistent index --------------------------------------------------------------------------

INDEX_PROBE = """
import json
from codex_ml.plugins.discovery import installed_entry_points
import codex_ml.registry as r
scan = installed_entry_points()
print(json.dumps({
    "from_index": scan.from_index,
    "keys": [k for k in r.list_metrics() if k.startswith("demo_")],
}))
"""


def test_index_is_reused_until_a_distribution_changes(
    tmp_path: Path, make_distribution: MakeDistribution, run_python: RunPython
) -> None:
    site, cwd, cache = tmp_path / "site", tmp_path / "cwd", tmp_path / "cache"
    cwd.mkdir()
    indexed = make_distribution(
        site, "demo-indexed", "1.0", entry_points={"codex_ml.metrics": {"demo_indexed": "m:b"}}
    )
    backdate(site, cwd)

    def probe(**env: str) -> dict:
        return _last_json(
            run_python(
                INDEX_PROBE, sys_path=[site], cwd=cwd, env={"CODEX_ML_CACHE_DIR": str(cache), **env}
            )
        )

    assert probe() == {"from_index": False, "keys": ["demo_indexed"]}
    assert len(list(cache.glob("discovery-*.marshal"))) == 1
    assert probe() == {"from_index": True, "keys": ["demo_indexed"]}

    # Installing a distribution is seen by the very next process.
    added = make_distribution(
        site, "demo-added", "1.0", entry_points={"codex_ml.metrics": {"demo_added": "m:b"}}
    )
    assert probe() == {"from_index": False, "keys": ["demo_added", "demo_indexed"]}
    # So is removing one.
    shutil.rmtree(added)
    assert probe() == {"from_index": False, "keys": ["demo_indexed"]}

    # Entry points rewritten in place (an editable re-install) are seen too.
    backdate(site, cwd)
    assert probe() == {"from_index": False, "keys": ["demo_indexed"]}
    assert probe() == {"from_index": True, "keys": ["demo_indexed"]}
    (indexed / "entry_points.txt").write_text("[codex_ml.metrics]\ndemo_renamed = m:b\n")
    assert probe() == {"from_index": False, "keys": ["demo_renamed"]}

    # A damaged index (cut short, or not an index at all) is rebuilt, never trusted.
    for damage in (lambda data: data[: len(data) // 2], lambda data: b'{"identity": "garbage"'):
        backdate(site, cwd)
        probe()
        assert probe() == {"from_index": True, "keys": ["demo_renamed"]}
        (index,) = cache.glob("discovery-*.marshal")
        index.write_bytes(damage(index.read_bytes()))
        assert probe() == {"from_index": False, "keys": ["demo_renamed"]}

    # CODEX_ML_DISCOVERY_CACHE=0 neither reads nor writes an index.
    shutil.rmtree(cache)
    assert probe(CODEX_ML_DISCOVERY_CACHE="0") == {"from_index": False, "keys": ["demo_renamed"]}
    assert not cache.exists()


@given(st.text(alphabet="-_.aZ9 ", max_size=30))
def test_distribution_names_are_normalised_as_pep_503_says(name: str) -> None:
    assert normalize_distribution_name(name) == re.sub(r"[-_.]+", "-", name).lower()
