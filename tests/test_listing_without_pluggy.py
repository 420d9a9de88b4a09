"""Listing without hook plugins: the built-in catalogue is read as a table, pluggy stays out.

The catalogue is a hook plugin, but while no third-party hook plugin is
installed, :class:`~codex_ml.registry.sources.PluginSource` reads the same
entries from :mod:`codex_ml.catalogue.table` and never imports pluggy. These
tests pin that the two paths give the same entries, that the table path
really is taken (and the manager path as soon as a hook plugin is there), and
that a listing process then imports no more than it needs.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from codex_ml.catalogue.table import CATALOGUE
from codex_ml.plugins import KINDS
from codex_ml.registry import _builtin_plugins, _builtin_tables
from codex_ml.registry.sources import PluginSource

#: The example distributions that declare hook plugins (codex_ml.plugins).
HOOK_DISTRIBUTIONS = "codex-ml-toy-hooks,codex-ml-broken-plugin"


def _provenance(providers: list) -> list[tuple]:
    return sorted(
        (p.raw_key, p.kind, p.source, p.target, p.plugin, p.distribution, p.version)
        for p in providers
    )


def test_table_and_plugin_manager_give_the_same_catalogue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CODEX_ML_BLOCK_PLUGINS", HOOK_DISTRIBUTIONS)
    source = PluginSource(_builtin_plugins, _builtin_tables)
    from_table = {kind.name: source.provide(kind.name) for kind in KINDS}
    assert source._host is None  # no hook plugin to load: the manager was never built

    source.host()  # what `codex-ml plugins list` does; from now on the manager answers
    for kind in KINDS:
        from_manager, problems = source.provide(kind.name)
        table_providers, table_problems = from_table[kind.name]
        assert problems == table_problems == []
        assert _provenance(table_providers) == _provenance(from_manager)
        assert {p.raw_key for p in table_providers} == set(CATALOGUE[kind.name])
        # Both load the very same factory, on first use.
        first_table = min(table_providers, key=lambda p: p.raw_key)
        first_manager = min(from_manager, key=lambda p: p.raw_key)
        assert first_table.status == "lazy"
        assert first_table.load() is first_manager.load()


def test_an_installed_hook_plugin_brings_the_plugin_manager_in() -> None:
    # The test environment installs codex-ml-toy-hooks, and conftest leaves it unblocked.
    source = PluginSource(_builtin_plugins, _builtin_tables)
    keys = {p.raw_key for p in source.provide("tokenizer")[0]}
    assert source._host is not None
    assert "toy_whitespace" in keys  # from the hook plugin
    assert set(CATALOGUE["tokenizer"]) <= keys


def test_a_listing_process_without_hook_plugins_imports_neither_pluggy_nor_typing(
    run_python: Callable[..., object],
) -> None:
    script = """
import json, sys
import codex_ml.registry as r
listed = {kind: r.get_registry(kind).list() for kind in r.registries}
imported = sorted(sys.modules)
f1 = r.get_metric("f1")
described = r.metric_registry.describe("f1").as_dict()
print(json.dumps({"listed": listed, "imported": imported, "described": described,
                  "f1": f1(["a b"], ["a b"])}))
"""
    env = {"CODEX_ML_BLOCK_PLUGINS": HOOK_DISTRIBUTIONS}
    data = json.loads(run_python(script, env=env).stdout.strip().splitlines()[-1])
    # The probe imports json itself, before the registry: only what listing added counts.
    leaked = {"pluggy", "typing", "dataclasses", "inspect", "codex_ml.plugins.manager"}
    assert leaked.isdisjoint(data["imported"])
    for kind, keys in CATALOGUE.items():
        assert set(keys) <= set(data["listed"][kind])
    assert "toy_metric" in data["listed"]["metric"]  # component entry points still listed
    assert "toy_whitespace" not in data["listed"]["tokenizer"]  # the blocked hook plugin is not
    assert data["described"]["source"] == "builtin"
    assert data["described"]["plugin"] == "codex_ml.catalogue"
    assert data["described"]["distribution"] == "codex-ml"
    assert data["f1"] == pytest.approx(1.0)
