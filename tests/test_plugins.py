"""Hook plugins through pluggy: the contract, provenance, fault isolation, lazy factories, policy.

Most tests install a real distribution (a ``*.dist-info`` folder with an
``entry_points.txt``) on ``sys.path`` and let the facade's registries discover
it, exactly as they discover a pip-installed plugin.
"""

from __future__ import annotations

import copy
import importlib.metadata
import inspect
import json
import pickle
import sys
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

import codex_ml.catalogue.plugin
from codex_ml.plugins import KINDS, LazyFactory, hookimpl, hookspecs
from codex_ml.registry import (
    RegistryConflictError,
    RegistryLoadError,
    RegistryNotFoundError,
    get_metric,
    get_tokenizer,
    list_metrics,
    list_tokenizers,
    metric_registry,
    plugin_source,
    tokenizer_registry,
)

# -- the hook contract -----------------------------------------------------------------------------


def test_hookimpl_marker_is_bound_to_the_codex_ml_project() -> None:
    assert isinstance(hookimpl, pluggy.HookimplMarker)
    assert hookimpl.project_name == "codex_ml"


def test_kinds_are_frozen_values() -> None:
    kind = KINDS[0]
    with pytest.raises(AttributeError, match="read-only"):
        kind.name = "other"  # type: ignore[misc]
    for twin in (pickle.loads(pickle.dumps(kind)), copy.deepcopy(kind), copy.copy(kind)):
        assert twin == kind and hash(twin) == hash(kind)
    assert len(set(KINDS)) == 10 and KINDS[0] != KINDS[1]
    assert repr(kind) == f"Kind(name={kind.name!r}, plural={kind.plural!r})"


def test_one_hookspec_per_kind_taking_no_arguments() -> None:
    expected = {
        "codex_ml_register_tokenizers",
        "codex_ml_register_models",
        "codex_ml_register_metrics",
        "codex_ml_register_data_loaders",
        "codex_ml_register_trainers",
        "codex_ml_register_reward_models",
        "codex_ml_register_callbacks",
        "codex_ml_register_optimizers",
        "codex_ml_register_schedulers",
        "codex_ml_register_adapters",
    }
    assert {kind.hook_name for kind in KINDS} == expected
    manager = plugin_source.host().manager
    for name in expected:
        spec = getattr(hookspecs, name)
        assert inspect.signature(spec).parameters == {}
        assert getattr(manager.hook, name).spec is not None


def test_builtin_catalogue_is_a_registered_plugin() -> None:
    manager = plugin_source.host().manager
    assert manager.get_plugin("codex_ml.catalogue") is codex_ml.catalogue.plugin
    info = metric_registry.describe("ppl")
    assert (info.source, info.plugin, info.distribution) == (
        "builtin",
        "codex_ml.catalogue",
        "codex-ml",
    )


def test_installed_hook_plugin_feeds_the_registries_with_its_provenance() -> None:
    version = importlib.metadata.version("codex-ml-toy-hooks")
    info = metric_registry.describe("toy_length_ratio")
    assert info.source == "plugin"
    assert (info.plugin, info.distribution, info.version) == (
        "toy_hooks",
        "codex-ml-toy-hooks",
        version,
    )
    assert info.target == "codex_ml_toy_hooks:build_length_ratio"
    assert get_metric("toy_length_ratio")(["abcd", "ab"], ["abcd", "abcd"]) == pytest.approx(0.75)


def test_list_plugin_distinfo_names_each_plugins_distribution() -> None:
    import codex_ml_toy_hooks

    distinfo = {
        info.name: (plugin, info)
        for plugin, info in plugin_source.host().manager.list_plugin_distinfo()
    }
    plugin, info = distinfo["toy_hooks"]
    assert plugin is codex_ml_toy_hooks
    assert info.distribution == "codex-ml-toy-hooks"
    assert info.version == importlib.metadata.version("codex-ml-toy-hooks")
    assert distinfo["codex_ml.catalogue"][1].distribution == "codex-ml"
    assert "broken_hooks" not in distinfo  # blocked by the suite's conftest


# -- a distribution of hook plugins, installed for one test ---------------------------------------

GOOD = """
from codex_ml.plugins import hookimpl

def build_good(scale=1.0):
    '''Always ``scale``.'''
    return lambda preds, targets: scale

@hookimpl
def codex_ml_register_metrics():
    return {"demo_good": build_good}
"""

IMPORT_BROKEN = "raise RuntimeError('demo import failure')\n"

MISSPELT = """
from codex_ml.plugins import hookimpl

@hookimpl
def codex_ml_register_metric():  # singular: no such hook
    return {"demo_misspelt": len}
"""

WRONG_ARGUMENTS = """
from codex_ml.plugins import hookimpl

@hookimpl
def codex_ml_register_metrics(config):
    return {"demo_wrong_args": len}
"""

RAISING = """
from codex_ml.plugins import hookimpl

class DemoTokenizer:
    def encode(self, text):
        return [ord(c) for c in text]

@hookimpl
def codex_ml_register_metrics():
    raise ValueError("demo hook failure")

@hookimpl
def codex_ml_register_tokenizers():
    return {"demo_tok": DemoTokenizer}
"""

NON_MAPPING = """
from codex_ml.plugins import hookimpl

@hookimpl
def codex_ml_register_metrics():
    return ["demo_listed"]
"""

NOTHING = """
from codex_ml.plugins import hookimpl

@hookimpl
def codex_ml_register_metrics():
    return None
"""

JUNK_VALUES = """
from codex_ml.plugins import hookimpl

@hookimpl
def codex_ml_register_metrics():
    return {"demo_junk": 42, " Demo_Case ": len, "": len}
"""

LAZY = """
from codex_ml.plugins import LazyFactory, hookimpl

@hookimpl
def codex_ml_register_metrics():
    return {
        "demo_lazy": LazyFactory("demo_lazy_target:build"),
        "demo_lazy_missing": LazyFactory("demo_no_such_module:build"),
    }
"""

LAZY_TARGET = '''
def build(threshold: float = 0.5):
    """A metric that is imported only when first used."""
    return lambda preds, targets: threshold
'''

InstallPlugins = Callable[..., None]


@pytest.fixture
def install_plugins(
    tmp_path: Path, make_distribution: Callable[..., Path], on_sys_path: Callable[..., None]
) -> InstallPlugins:
    """Install one distribution whose ``codex_ml.plugins`` entries are ``name -> module source``."""

    def install(plugins: dict[str, str], *, extra_modules: dict[str, str] | None = None) -> None:
        site = tmp_path / "site"
        make_distribution(
            site,
            "demo-hooks",
            "0.3.0",
            entry_points={"codex_ml.plugins": {name: f"demo_{name}" for name in plugins}},
            modules={
                **{f"demo_{name}": source for name, source in plugins.items()},
                **(extra_modules or {}),
            },
        )
        on_sys_path(site)

    return install


ALL_FAULTS = {
    "good": GOOD,
    "import_broken": IMPORT_BROKEN,
    "misspelt": MISSPELT,
    "wrong_args": WRONG_ARGUMENTS,
    "raising": RAISING,
    "non_mapping": NON_MAPPING,
    "nothing": NOTHING,
    "junk": JUNK_VALUES,
}


def test_faulty_plugins_do_not_stop_the_others(install_plugins: InstallPlugins) -> None:
    install_plugins(ALL_FAULTS)
    keys = list_metrics()
    assert {"demo_good", "ppl", "toy_metric", "toy_length_ratio"} <= set(keys)
    assert get_metric("demo_good", scale=2.0)([], []) == 2.0
    assert get_tokenizer("demo_tok").encode("ab") == [97, 98]  # its metric hook raised
    info = metric_registry.describe("demo_good")
    assert (info.source, info.plugin, info.distribution, info.version) == (
        "plugin",
        "good",
        "demo-hooks",
        "0.3.0",
    )
    assert not {"demo_misspelt", "demo_wrong_args", "demo_listed"} & set(keys)


def test_each_plugin_fault_is_reported_with_its_plugin_and_stage(
    install_plugins: InstallPlugins,
) -> None:
    install_plugins(ALL_FAULTS)
    messages = [problem.message for problem in metric_registry.problems()]

    def reported(plugin: str) -> str:
        found = [m for m in messages if f"plugin {plugin!r} (" in m and "demo-hooks 0.3.0" in m]
        assert len(found) == 1, (plugin, messages)
        return found[0]

    assert "failed to import: RuntimeError: demo import failure" in reported("import_broken")
    assert "failed validation: PluginValidationError" in reported("misspelt")
    assert "codex_ml_register_metric'" in reported("misspelt")
    assert "failed validation" in reported("wrong_args")
    assert "config" in reported("wrong_args")
    assert "raised in its metric hook: ValueError: demo hook failure" in reported("raising")
    assert "invalid result from its metric hook" in reported("non_mapping")
    assert "list" in reported("non_mapping")
    assert "bad key" in reported("junk")  # the empty key
    assert not [m for m in messages if "'good'" in m or "'nothing'" in m]
    # The raising plugin's fault concerns metrics only; the tokenizer registry has no hook fault.
    assert not [p for p in tokenizer_registry.problems() if "demo hook failure" in p.message]


def test_plugins_that_fail_validation_are_unregistered(install_plugins: InstallPlugins) -> None:
    install_plugins(ALL_FAULTS)
    manager = plugin_source.host().manager
    assert manager.get_plugin("good") is not None
    for name in ("import_broken", "misspelt", "wrong_args"):
        assert manager.get_plugin(name) is None
    names = {info.name for _, info in manager.list_plugin_distinfo()}
    assert {"good", "raising", "junk"} <= names
    assert not {"import_broken", "misspelt", "wrong_args"} & names


def test_a_missing_key_after_plugin_faults_is_a_load_error_too(
    install_plugins: InstallPlugins,
) -> None:
    install_plugins(ALL_FAULTS)
    with pytest.raises(RegistryLoadError) as caught:
        get_metric("demo_misspelt")
    error = caught.value
    assert isinstance(error, RegistryNotFoundError)  # either except clause catches it
    assert isinstance(error, KeyError)
    assert error.__cause__ is not None
    assert "import_broken" in str(error)
    assert "codex-ml plugins doctor" in str(error)


def test_a_non_callable_value_fails_on_use_only(install_plugins: InstallPlugins) -> None:
    install_plugins(ALL_FAULTS)
    assert "demo_junk" in list_metrics()
    assert metric_registry.describe("demo_junk").status == "failed"
    with pytest.raises(RegistryLoadError) as caught:
        metric_registry.get("demo_junk")
    assert isinstance(caught.value.__cause__, TypeError)
    assert "hook plugin 'junk'" in str(caught.value)
    assert "int" in str(caught.value)


def test_plugin_keys_are_normalised(install_plugins: InstallPlugins) -> None:
    install_plugins(ALL_FAULTS)
    assert "demo_case" in list_metrics()
    assert metric_registry.get(" DEMO_CASE") is len
    assert "given as ' Demo_Case '" in metric_registry.describe("demo_case").providers[0]


def test_one_key_from_two_plugins_is_ambiguous_in_load_order(
    install_plugins: InstallPlugins,
) -> None:
    first = (
        "from codex_ml.plugins import hookimpl\n\n"
        "@hookimpl\n"
        "def codex_ml_register_metrics():\n"
        '    return {"demo_dup": abs}\n'
    )
    second = first.replace('"demo_dup": abs', '" Demo_Dup": len')
    install_plugins({"dup_first": first, "dup_second": second})
    assert list_metrics().count("demo_dup") == 1
    info = metric_registry.describe("demo_dup")
    assert info.status == "ambiguous"
    assert info.plugin == "dup_first"  # the first plugin loaded is described first
    assert "dup_first" in info.providers[0]
    assert "dup_second" in info.providers[1]
    with pytest.raises(RegistryConflictError) as caught:
        get_metric("demo_dup")
    message = str(caught.value)
    assert message.index("dup_first") < message.index("dup_second")
    assert "given as ' Demo_Dup'" in message
    assert "CODEX_ML_BLOCK_PLUGINS" in message
    assert "override=True" in message
    assert metric_registry.ambiguous() == {"demo_dup": list(info.providers)}


# -- lazy factories --------------------------------------------------------------------------------


def test_lazy_factory_from_a_plugin_is_imported_on_first_use(
    install_plugins: InstallPlugins,
) -> None:
    install_plugins({"lazy": LAZY}, extra_modules={"demo_lazy_target": LAZY_TARGET})
    assert {"demo_lazy", "demo_lazy_missing"} <= set(list_metrics())
    info = metric_registry.describe("demo_lazy")
    assert info.target == "demo_lazy_target:build"
    assert info.status == "lazy"
    assert info.line == 2
    assert info.doc == "A metric that is imported only when first used."
    assert "demo_lazy_target" not in sys.modules
    factory = metric_registry.get("demo_lazy")
    assert factory is sys.modules["demo_lazy_target"].build  # the target itself, not a wrapper
    assert get_metric("demo_lazy", threshold=0.25)([], []) == 0.25


def test_lazy_factory_to_a_missing_module_fails_on_use(install_plugins: InstallPlugins) -> None:
    install_plugins({"lazy": LAZY}, extra_modules={"demo_lazy_target": LAZY_TARGET})
    with pytest.raises(RegistryLoadError) as caught:
        metric_registry.get("demo_lazy_missing")
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    assert "demo_no_such_module:build" in str(caught.value)
    assert "hook plugin 'lazy'" in str(caught.value)
    assert metric_registry.get("demo_lazy") is not None


def test_lazy_factory_imports_once_and_forwards_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lf_target.py").write_text(LAZY_TARGET)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lf_target", raising=False)
    factory = LazyFactory(" lf_target : build ")
    assert factory.target == "lf_target:build"
    assert repr(factory) == "LazyFactory('lf_target:build')"
    assert "lf_target" not in sys.modules
    assert factory(threshold=0.75)([], []) == 0.75
    module = sys.modules["lf_target"]
    assert factory.resolve() is module.build
    assert inspect.signature(factory) == inspect.signature(module.build)
    monkeypatch.delitem(sys.modules, "lf_target")
    assert factory.resolve() is module.build  # resolved once, not re-imported


@pytest.mark.parametrize("bad", ["no_colon", ":build", "module:", " : "])
def test_lazy_factory_needs_module_and_attribute(bad: str) -> None:
    with pytest.raises(ValueError, match="module:attr"):
        LazyFactory(bad)


# -- the real broken example plugin ----------------------------------------------------------------


@pytest.mark.usefixtures("broken_plugin")
def test_broken_example_plugin_is_isolated() -> None:
    messages = [p.message for p in metric_registry.problems()]
    assert any(
        "plugin 'broken_hooks' (codex-ml-broken-plugin" in m and "failed to import" in m
        for m in messages
    )
    assert "broken_metric" in list_metrics()
    with pytest.raises(RegistryLoadError) as caught:
        get_metric("broken_metric")
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    message = str(caught.value)
    assert "entry point 'broken_metric'" in message
    assert "codex-ml-broken-plugin" in message
    # The same distribution's healthy entry, and everybody else, still work.
    assert get_metric("healthy_metric")([1], [2]) == 1.0
    assert get_metric("toy_length_ratio")(["ab"], ["ab"]) == 1.0
    assert "toy_tokenizer" in list_tokenizers()


# -- the autoload switch and the block list (fresh interpreters, so sys.modules tells the truth)

THIRD_PARTY_MODULES = ("codex_ml_toy", "codex_ml_toy_hooks", "codex_ml_broken")

INSPECT_REGISTRIES = f"""
import json, os, sys
import codex_ml.registry as r

def third_party_modules():
    return sorted(m for m in sys.modules if m.split(".")[0] in {THIRD_PARTY_MODULES!r})

def snapshot():
    return {{
        "keys": {{kind: reg.list() for kind, reg in r.registries.items()}},
        "sources": sorted({{e.source for reg in r.registries.values() for e in reg.entries()}}),
        "modules": third_party_modules(),
    }}
"""


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_autoload_switch_turns_off_all_third_party_discovery(
    run_python: Callable[..., object],
) -> None:
    script = (
        INSPECT_REGISTRIES
        + """
before = snapshot()
r.register_metric("in_process", len)
print(json.dumps({"before": before, "in_process": r.metric_registry.get("in_process") is len}))
"""
    )
    result = run_python(
        script, env={"CODEX_ML_DISABLE_PLUGIN_AUTOLOAD": "1", "CODEX_ML_BLOCK_PLUGINS": None}
    )
    data = _last_json(result.stdout)
    before = data["before"]
    assert before["sources"] == ["builtin"]  # no hook plugin, no entry point
    assert "ppl" in before["keys"]["metric"]
    assert not [k for keys in before["keys"].values() for k in keys if "toy" in k or "broken" in k]
    assert before["modules"] == []
    assert data["in_process"] is True


@pytest.mark.parametrize(
    ("value", "disabled"),
    [
        *[("1", True), ("true", True), (" YES ", True), ("on", True), ("y", True), ("2", True)],
        *[("0", False), ("", False), ("false", False), (" FALSE ", False)],
    ],
)
def test_autoload_switch_values(
    monkeypatch: pytest.MonkeyPatch, value: str, disabled: bool
) -> None:
    from codex_ml.plugins.policy import autoload_disabled

    monkeypatch.setenv("CODEX_ML_DISABLE_PLUGIN_AUTOLOAD", value)
    assert autoload_disabled() is disabled


def test_blocked_plugins_are_never_imported(run_python: Callable[..., object]) -> None:
    # Blocked by entry-point name (toy_hooks, toy_metric) and by distribution name
    # in a spelling of its own (underscores, capitals): all are normalised.
    script = (
        INSPECT_REGISTRIES
        + """
blocked = snapshot()
blocked["toy_tokenizer"] = r.get_tokenizer("toy_tokenizer").decode([0, 1])
try:
    r.get_metric("toy_metric")
except r.RegistryNotFoundError:
    blocked["toy_metric"] = "not found"
blocked["modules_after_use"] = third_party_modules()
os.environ["CODEX_ML_BLOCK_PLUGINS"] = "codex-ml-broken-plugin"
r.reload()
print(json.dumps({"blocked": blocked, "unblocked": snapshot()}))
"""
    )
    result = run_python(
        script, env={"CODEX_ML_BLOCK_PLUGINS": "toy_hooks, Codex_ML_Broken.Plugin ,toy_metric"}
    )
    data = _last_json(result.stdout)
    blocked, unblocked = data["blocked"], data["unblocked"]
    assert blocked["modules"] == []
    assert blocked["modules_after_use"] == ["codex_ml_toy", "codex_ml_toy.tokenizer"]
    assert blocked["toy_tokenizer"] == "ab"
    assert blocked["toy_metric"] == "not found"
    metrics = blocked["keys"]["metric"]
    assert not {"toy_metric", "toy_length_ratio", "broken_metric", "healthy_metric"} & set(metrics)
    assert "toy_reward" not in blocked["keys"]["reward_model"]
    # reload() reads the block list again: the hook plugin is back, and imported.
    assert {"toy_metric", "toy_length_ratio"} <= set(unblocked["keys"]["metric"])
    assert "codex_ml_toy_hooks" in unblocked["modules"]
    assert not [m for m in unblocked["modules"] if m.startswith("codex_ml_broken")]


# -- plugins that call back into the registries while they are being loaded ------------------------

REGISTERS_AT_IMPORT = """
from codex_ml.plugins import hookimpl
from codex_ml.registry import register_metric

@register_metric("demo_at_import")
def build():
    return len

@hookimpl
def codex_ml_register_metrics():
    return {"demo_never": build}
"""

LOOKS_UP_IN_HOOK = """
from codex_ml.plugins import hookimpl
from codex_ml.registry import list_metrics

@hookimpl
def codex_ml_register_tokenizers():
    return {key: str for key in list_metrics()}

@hookimpl
def codex_ml_register_metrics():
    return {"demo_" + key: len for key in list_metrics()}
"""


def test_a_plugin_using_the_registries_while_loading_fails_alone(
    tmp_path: Path, make_distribution: Callable[..., Path], run_python: Callable[..., object]
) -> None:
    # Registering at import time, or looking keys up inside a hook, re-enters plugin
    # loading from within itself: it must fail that plugin with a clear message,
    # not hang the process. A fresh interpreter, so that a hang is only a timeout.
    site = tmp_path / "site"
    make_distribution(
        site,
        "demo-reentrant",
        "1.0",
        entry_points={
            "codex_ml.plugins": {"at_import": "demo_at_import", "in_hook": "demo_in_hook"}
        },
        modules={"demo_at_import": REGISTERS_AT_IMPORT, "demo_in_hook": LOOKS_UP_IN_HOOK},
    )
    script = """
import json
import codex_ml.registry as r
tokenizers = r.list_tokenizers()  # first: its hook then looks up metrics mid-discovery
print(json.dumps({
    "tokenizers": tokenizers,
    "metrics": r.list_metrics(),
    "problems": [p.message for p in r.metric_registry.problems()],
    "tokenizer_problems": [p.message for p in r.tokenizer_registry.problems()],
}))
"""
    result = run_python(script, sys_path=[site], timeout=30)
    data = _last_json(result.stdout)  # type: ignore[attr-defined]
    assert {"ppl", "toy_metric", "toy_length_ratio"} <= set(data["metrics"])
    assert not [k for k in data["metrics"] if k.startswith("demo_")]
    (at_import,) = [m for m in data["problems"] if "'at_import'" in m]
    assert "failed to import" in at_import
    assert "while" in at_import and "codex_ml_register_" in at_import  # says what to do
    (in_hook,) = [m for m in data["problems"] if "'in_hook'" in m]
    assert "raised in its metric hook" in in_hook
    assert any("'in_hook'" in m and "tokenizer hook" in m for m in data["tokenizer_problems"])
    assert "toy_tokenizer" in data["tokenizers"]
