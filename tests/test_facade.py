"""The facade ``codex_ml.registry``: ten registries, their functions, the spec's examples,
the catalogue and example plugins, and an import that costs nothing.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import codex_ml.registry as facade
from codex_ml.plugins import KINDS
from codex_ml.registry import Registry, RegistryLoadError, RegistryNotFoundError

#: The spec's table: registry symbol -> entry-point group.
SPEC_TABLE = {
    "tokenizer_registry": "codex_ml.tokenizers",
    "model_registry": "codex_ml.models",
    "metric_registry": "codex_ml.metrics",
    "data_loader_registry": "codex_ml.data_loaders",
    "trainer_registry": "codex_ml.trainers",
    "reward_model_registry": "codex_ml.reward_models",
    "callback_registry": "codex_ml.callbacks",
    "optimizer_registry": "codex_ml.optimizers",
    "scheduler_registry": "codex_ml.schedulers",
    "adapter_registry": "codex_ml.adapters",
}

#: The spec's "Bundled offline catalogue" table (plus the file-free default tokenizer).
SPEC_CATALOGUE = {
    "tokenizer": {"hf", "gpt2-offline", "tinyllama-offline", "bytes"},
    "model": {"minilm", "decoder_only", "hf", "gpt2-offline", "tinyllama-offline"},
    "data_loader": {"lines", "offline:tiny-corpus"},
    "metric": {
        "accuracy@token",
        "ppl",
        "exact_match",
        "f1",
        "dist-1",
        "dist-2",
        "offline:weighted-accuracy",
    },
    "trainer": {"offline:functional"},
    "reward_model": {"offline:heuristic"},
    "callback": {"tensorboard", "mlflow", "csv", "early-stopping"},
    "optimizer": {"adamw", "adam", "sgd", "adafactor"},
    "scheduler": {"cosine", "linear", "constant", "wsd"},
    "adapter": {"lora", "freeze"},
}

#: The example plugins: kind -> key -> (distribution, plugin name, source).
EXAMPLES = {
    "tokenizer": {
        "toy_tokenizer": ("codex-ml-toy-components", "toy_tokenizer", "entry-point"),
        "toy_whitespace": ("codex-ml-toy-hooks", "toy_hooks", "plugin"),
    },
    "model": {"toy_model": ("codex-ml-toy-components", "toy_model", "entry-point")},
    "metric": {
        "toy_metric": ("codex-ml-toy-components", "toy_metric", "entry-point"),
        "toy_length_ratio": ("codex-ml-toy-hooks", "toy_hooks", "plugin"),
    },
    "data_loader": {
        "toy_data_loader": ("codex-ml-toy-components", "toy_data_loader", "entry-point")
    },
    "trainer": {"toy_trainer": ("codex-ml-toy-components", "toy_trainer", "entry-point")},
    "reward_model": {"toy_reward": ("codex-ml-toy-hooks", "toy_hooks", "plugin")},
}


# -- shape -----------------------------------------------------------------------------------------


def test_ten_registries_with_the_spec_groups() -> None:
    assert set(facade.registries) == {kind.name for kind in KINDS}
    for symbol, group in SPEC_TABLE.items():
        registry = getattr(facade, symbol)
        assert isinstance(registry, Registry)
        assert registry.entry_point_group == group
        assert facade.registries[registry.kind] is registry
        assert symbol in facade.__all__


def test_every_kind_has_register_get_and_list_functions() -> None:
    for kind in KINDS:
        for name in (f"register_{kind.name}", f"get_{kind.name}", f"list_{kind.name}s"):
            function = getattr(facade, name)
            assert function.__name__ == name
            assert function.__doc__
            assert name in facade.__all__


@pytest.mark.usefixtures("isolated_registries")
@pytest.mark.parametrize("kind", [kind.name for kind in KINDS])
def test_functions_reach_their_own_registry(kind: str) -> None:
    register = getattr(facade, f"register_{kind}")
    get = getattr(facade, f"get_{kind}")
    list_keys = getattr(facade, f"list_{kind}s")
    registry = facade.registries[kind]

    @register(f"Facade-{kind}")
    def build(size: int = 1, name: str = "x") -> tuple[str, int, str]:
        return (kind, size, name)

    def direct() -> str:
        return "direct"

    assert register(f"direct-{kind}", direct) is direct
    assert f"facade-{kind}" in list_keys()
    assert list_keys() == registry.list()
    assert registry.get(f"facade-{kind}") is build
    # get_<kind> calls the factory with the kwargs; `name` is free for the factory's use.
    assert get(f"FACADE-{kind}", size=3, name="n") == (kind, 3, "n")
    assert get(f"direct-{kind}") == "direct"
    others = [k.name for k in KINDS if k.name != kind]
    assert all(f"facade-{kind}" not in facade.registries[o] for o in others)


def test_get_registry_by_singular_or_plural_name() -> None:
    assert facade.get_registry("metric") is facade.metric_registry
    assert facade.get_registry("Data_Loaders") is facade.data_loader_registry
    with pytest.raises(ValueError, match=r"unknown component kind 'widget'.*tokenizer"):
        facade.get_registry("widget")


def test_get_of_an_unknown_key_is_a_not_found_error() -> None:
    with pytest.raises(RegistryNotFoundError, match="Did you mean 'toy_metric'"):
        facade.get_metric("toy_metrik")


# -- the spec's examples, verbatim -----------------------------------------------------------------


@pytest.mark.usefixtures("isolated_registries")
def test_spec_decorator_example() -> None:
    from codex_ml.registry import register_tokenizer

    @register_tokenizer("toy")
    def build_toy_tokenizer(**kwargs):  # type: ignore[no-untyped-def]
        return {"vocab": kwargs.get("vocab", {})}

    from codex_ml.registry import get_tokenizer

    tokenizer = get_tokenizer("toy", vocab={"a": 0, "b": 1})
    assert tokenizer == {"vocab": {"a": 0, "b": 1}}
    assert build_toy_tokenizer() == {"vocab": {}}


@pytest.mark.usefixtures("isolated_registries")
def test_spec_direct_example() -> None:
    from codex_ml.registry import get_tokenizer, register_tokenizer

    def build_toy_tokenizer(**kwargs):  # type: ignore[no-untyped-def]
        return {"vocab": kwargs.get("vocab", {})}

    register_tokenizer("toy", build_toy_tokenizer)

    tokenizer = get_tokenizer("toy", vocab={"a": 0, "b": 1})
    assert tokenizer == {"vocab": {"a": 0, "b": 1}}


# -- what ships, and what is installed -------------------------------------------------------------


def test_catalogue_of_the_spec_is_listed_and_every_target_exists() -> None:
    for kind, keys in SPEC_CATALOGUE.items():
        registry = facade.registries[kind]
        assert keys <= set(registry.list()), kind
        for key in keys:
            info = registry.describe(key)
            assert info.source == "builtin"
            # Located by reading the source, not importing it: a typo in the
            # catalogue's "module:attr" shows up here, without torch.
            assert info.file is not None and Path(info.file).is_file(), info
            assert isinstance(info.line, int), info


def test_example_plugins_are_listed_with_distribution_and_version() -> None:
    for kind, examples in EXAMPLES.items():
        registry = facade.registries[kind]
        for key, (distribution, plugin, source) in examples.items():
            assert key in registry.list()
            info = registry.describe(key)
            assert (info.distribution, info.plugin, info.source) == (distribution, plugin, source)
            assert info.version == importlib.metadata.version(distribution)


def test_example_components_work() -> None:
    tokenizer = facade.get_tokenizer("toy_tokenizer")
    assert tokenizer.decode(tokenizer.encode("Hello, world!")) == "hello, world!"
    custom = facade.get_tokenizer("toy_tokenizer", vocab={"a": 0, "b": 1})
    assert custom.encode("abc") == [0, 1]
    words = facade.get_tokenizer("toy_whitespace")
    assert words.decode(words.encode("to be or not to be")) == "to be or not to be"
    metric = facade.get_metric("toy_metric", scale=2.0)
    assert metric(["a", "b", "c", "d"], ["a", "b", "x", "y"]) == 1.0
    loader = facade.get_data_loader("toy_data_loader", n=5, seed=3)
    assert loader == facade.get_data_loader("toy_data_loader", n=5, seed=3)
    assert len(loader) == 5 and all(line.endswith(".") for line in loader)
    reward = facade.get_reward_model("toy_reward", target_words=2)
    assert reward.evaluate("prompt", "two words") == 1.0
    assert reward.evaluate("prompt", "") == -1.0


# -- the facade's reload and isolation ------------------------------------------------------------


def test_reload_retries_a_failed_entry_point(
    tmp_path: Path, make_distribution: Callable[..., Path], on_sys_path: Callable[..., None]
) -> None:
    site = tmp_path / "site"
    make_distribution(
        site, "demo-late", "1.0", entry_points={"codex_ml.metrics": {"demo_late": "late_mod:build"}}
    )
    on_sys_path(site)
    with pytest.raises(RegistryLoadError) as caught:
        facade.get_metric("demo_late")
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    (site / "late_mod.py").write_text("def build():\n    return lambda p, t: 'late'\n")
    with pytest.raises(RegistryLoadError):
        facade.get_metric("demo_late")  # the failure is cached...
    facade.reload()  # ...until reload()
    assert facade.get_metric("demo_late")(None, None) == "late"


def test_isolated_restores_every_registry_even_on_error() -> None:
    with pytest.raises(KeyError), facade.isolated() as registries:
        assert registries is facade.registries
        for kind in registries:
            getattr(facade, f"register_{kind}")("isolated-entry", len)
        facade.register_metric("ppl", len, override=True)
        raise KeyError("leave")
    for registry in facade.registries.values():
        assert "isolated-entry" not in registry
    assert facade.metric_registry.describe("ppl").source == "builtin"


# -- importing and listing cost nothing ------------------------------------------------------------

HEAVY = ("torch", "transformers", "hydra", "omegaconf")
COMPONENT_MODULES = ("codex_ml_toy", "codex_ml_toy_hooks.whitespace", "codex_ml_broken.metric")


def test_import_and_listing_import_no_heavy_or_component_module(
    run_python: Callable[..., object],
) -> None:
    script = """
import json, sys
import codex_ml.registry as r
listed = {kind: getattr(r, f"list_{kind}s")() for kind in r.registries}
described = [
    (info.file, info.line, info.doc)
    for reg in r.registries.values() for info in reg.entries()
]
contained = "toy_metric" in r.metric_registry
print(json.dumps({"listed": listed, "described": len(described), "modules": sorted(sys.modules)}))
"""
    env = {"CODEX_ML_BLOCK_PLUGINS": None}  # the broken plugin too: listing must not import it
    data = json.loads(run_python(script, env=env).stdout.strip().splitlines()[-1])
    modules = data["modules"]
    offenders = [
        m
        for m in modules
        if m.split(".")[0] in HEAVY
        or any(m == c or m.startswith(c + ".") for c in COMPONENT_MODULES)
        or m.startswith(("codex_ml.models", "codex_ml.tokenizers", "codex_ml.metrics"))
        or m.startswith(("codex_ml.training", "codex_ml.data", "codex_ml.rewards"))
    ]
    assert offenders == []
    # Not vacuous: the plugins were there, the hook plugin itself was loaded.
    assert "codex_ml_toy_hooks" in modules
    assert {"toy_metric", "toy_length_ratio", "broken_metric"} <= set(data["listed"]["metric"])
    assert data["described"] == sum(len(keys) for keys in data["listed"].values())


def test_conftest_keeps_the_suite_hermetic() -> None:
    assert "codex-ml-broken-plugin" in os.environ["CODEX_ML_BLOCK_PLUGINS"].split(",")
    assert "broken_metric" not in facade.list_metrics()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    cache = Path(os.environ["CODEX_ML_CACHE_DIR"])
    assert cache.resolve() != (Path.home() / ".cache" / "codex-ml").resolve()


def test_example_model_and_trainer_learn_the_example_data() -> None:
    tokenizer = facade.get_tokenizer("toy_tokenizer")
    data = facade.get_data_loader("toy_data_loader", n=8, seed=0)
    model = facade.get_model("toy_model", vocab_size=tokenizer.vocab_size, seed=0)
    trainer = facade.get_trainer("toy_trainer", max_steps=40, lr=0.5)
    seen: list[dict] = []
    result = trainer(model, tokenizer, data, callbacks=[seen.append])
    losses = [record["loss"] for record in result["history"]]
    assert seen == result["history"] and len(losses) == 40
    assert sum(losses[-8:]) / 8 < sum(losses[:8]) / 8 - 0.2
    assert result["final_metrics"] == {"train_loss": losses[-1]}
