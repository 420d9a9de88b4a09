"""The Registry core: keys, registration, lookup, provenance, conflicts, isolation, threads.

Each test builds its own :class:`Registry`, fed where it needs discovered entries
by a small in-memory source, so nothing here depends on what is installed.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import pytest

from codex_ml.plugins.lazy import load_target
from codex_ml.registry import (
    EntryInfo,
    Registry,
    RegistryConflictError,
    RegistryError,
    RegistryLoadError,
    RegistryNotFoundError,
)
from codex_ml.registry.base import SOURCE_ENTRY_POINT, Provider, SourceProblem


class StaticSource:
    """Offers fixed ``key -> "module:attr"`` entries, as an installed distribution would."""

    def __init__(self, entries: dict[str, str], distribution: str = "demo-dist") -> None:
        self.entries = entries
        self.distribution = distribution
        self.refreshes = 0

    def provide(self, kind: str) -> tuple[list[Provider], list[SourceProblem]]:
        providers = [
            Provider(
                key,
                kind,
                SOURCE_ENTRY_POINT,
                loader=partial(load_target, target),
                target=target,
                plugin=key,
                distribution=self.distribution,
                version="1.2.3",
            )
            for key, target in self.entries.items()
        ]
        return providers, []

    def refresh(self) -> None:
        self.refreshes += 1


def build_one() -> str:
    """Builds one."""
    return "one"


def build_two() -> str:
    return "two"


@pytest.fixture
def registry() -> Registry:
    return Registry("widget")


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on ``sys.path`` for modules written by the test; they are forgotten afterwards."""
    folder = tmp_path / "modules"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    before = set(sys.modules)
    yield folder
    for name in set(sys.modules) - before:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(folder)):
            del sys.modules[name]


# -- keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["Toy", " toy ", "TOY", "toy\n"])
def test_case_and_space_variants_are_one_key(registry: Registry, variant: str) -> None:
    registry.register("toy", build_one)
    assert registry.get(variant) is build_one
    assert variant in registry
    assert registry.describe(variant).key == "toy"
    assert registry.list() == ["toy"]


@pytest.mark.parametrize("variant", ["\uff50\uff50\uff4c", "\uff30PL", " \uff50pl\u3000"])
def test_a_compatibility_form_is_the_same_key(registry: Registry, variant: str) -> None:
    """Fullwidth ``\\uff50\\uff50\\uff4c`` reads as ``ppl``, so it is ``ppl`` (NFKC)."""
    registry.register("ppl", build_one)
    assert registry.get(variant) is build_one
    with pytest.raises(RegistryConflictError):
        registry.register(variant, build_two)
    assert registry.list() == ["ppl"]


@pytest.mark.parametrize(
    "bad", ["ppl\u200b", "p\u200dpl", "\ufeffppl", "ppl\nfake  row", "a\x1b[2Jb", "p\ufe0fpl"]
)
def test_a_key_holding_an_invisible_character_is_refused(registry: Registry, bad: str) -> None:
    """``ppl\\u200b`` prints like ``ppl``, and ``\\n`` would forge a row of a listing."""
    registry.register("ppl", build_one)
    with pytest.raises(ValueError, match=r"widget registry keys must hold only visible") as caught:
        registry.register(bad, build_two)
    assert "U+" in str(caught.value)
    with pytest.raises(ValueError, match="visible"):
        registry.get(bad)
    assert bad not in registry
    assert registry.list() == ["ppl"]


def test_variant_of_a_taken_key_is_a_conflict(registry: Registry) -> None:
    registry.register("toy", build_one)
    with pytest.raises(RegistryConflictError):
        registry.register(" TOY ", build_two)


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("Offline:Tiny-Corpus", "offline:tiny-corpus"),
        ("accuracy@TOKEN", "accuracy@token"),
        ("org/model.v2", "org/model.v2"),
        ("dist-1", "dist-1"),
    ],
)
def test_keys_may_hold_punctuation(registry: Registry, given: str, key: str) -> None:
    registry.register(given, build_one)
    assert registry.list() == [key]
    assert registry.get(key) is build_one


@pytest.mark.parametrize("bad", [None, 42, b"toy", ("toy",)])
def test_non_string_key_is_a_type_error_naming_the_registry(
    registry: Registry, bad: object
) -> None:
    for attempt in (
        lambda: registry.register(bad, build_one),
        lambda: registry.register(bad),
        lambda: registry.get(bad),
        lambda: registry.describe(bad),
    ):
        with pytest.raises(TypeError, match="widget registry keys must be strings"):
            attempt()
    assert bad not in registry


@pytest.mark.parametrize("bad", ["", "   ", "\t\n"])
def test_empty_key_is_a_value_error_naming_the_registry(registry: Registry, bad: str) -> None:
    with pytest.raises(ValueError, match="widget registry keys must be non-empty"):
        registry.register(bad, build_one)
    with pytest.raises(ValueError, match="widget"):
        registry.register(bad)  # the decorator form fails at once, not at decoration
    assert bad not in registry


# -- registration ----------------------------------------------------------------------------------


def test_register_as_decorator_returns_the_function_unchanged(registry: Registry) -> None:
    @registry.register("deco")
    def build() -> str:
        return "built"

    assert build() == "built"
    assert registry.get("deco") is build


def test_register_direct_returns_the_object(registry: Registry) -> None:
    assert registry.register("direct", build_one) is build_one
    assert registry.get("direct") is build_one


def test_register_accepts_a_class(registry: Registry) -> None:
    class Widget:
        pass

    registry.register("cls", Widget)
    assert isinstance(registry.get("cls")(), Widget)


def test_register_rejects_a_non_callable(registry: Registry) -> None:
    with pytest.raises(TypeError, match=r"widget 'x'.*callable factory.*int"):
        registry.register("x", 42)
    assert "x" not in registry


def test_get_returns_the_factory_without_calling_it(registry: Registry) -> None:
    calls: list[int] = []

    def factory() -> object:
        calls.append(1)
        return object()

    registry.register("lazy", factory)
    assert registry.get("lazy") is factory
    assert registry.get("lazy") is factory
    assert calls == []


def test_list_is_sorted_and_holds_every_source(module_dir: Path) -> None:
    (module_dir / "found_mod.py").write_text("def build():\n    return 'found'\n")
    registry = Registry("widget", sources=[StaticSource({"middle": "found_mod:build"})])
    registry.register("zeta", build_one)
    registry.register("Alpha", build_two)
    assert registry.list() == ["alpha", "middle", "zeta"]
    assert list(registry) == registry.list()
    assert len(registry) == 3


def test_contains(registry: Registry) -> None:
    registry.register("toy", build_one)
    assert "toy" in registry
    assert "Toy" in registry
    assert "other" not in registry
    assert 3 not in registry


def test_same_object_twice_is_a_no_op(registry: Registry) -> None:
    registry.register("toy", build_one)
    assert registry.register("toy", build_one) is build_one
    assert registry.register("TOY", build_one) is build_one
    assert registry.get("toy") is build_one


def test_conflict_names_both_providers(registry: Registry) -> None:
    registry.register("toy", build_one)
    with pytest.raises(RegistryConflictError) as caught:
        registry.register("toy", build_two)
    message = str(caught.value)
    assert f"{__name__}:build_one" in message  # the one holding the key
    assert f"{__name__}:build_two" in message  # the newcomer
    assert "override=True" in message
    assert caught.value.key == "toy"
    assert caught.value.kind == "widget"
    assert len(caught.value.providers) == 2
    assert registry.get("toy") is build_one  # the failed attempt changed nothing


def test_conflict_with_a_discovered_entry_names_its_distribution(module_dir: Path) -> None:
    (module_dir / "found_mod.py").write_text("def build():\n    return 'found'\n")
    registry = Registry("widget", sources=[StaticSource({"found": "found_mod:build"})])
    with pytest.raises(RegistryConflictError) as caught:
        registry.register("found", build_two)
    message = str(caught.value)
    assert "found_mod:build" in message
    assert "demo-dist 1.2.3" in message
    assert f"{__name__}:build_two" in message


def test_override_replaces_an_in_process_entry(registry: Registry) -> None:
    registry.register("toy", build_one)
    registry.get("toy")  # warm any lookup cache: the override must still win
    registry.register("toy", build_two, override=True)
    assert registry.get("toy") is build_two
    assert registry.describe("toy").target == f"{__name__}:build_two"


def test_override_shadows_a_discovered_entry_and_unregister_restores_it(module_dir: Path) -> None:
    (module_dir / "found_mod.py").write_text("def build():\n    return 'found'\n")
    registry = Registry("widget", sources=[StaticSource({"found": "found_mod:build"})])
    assert registry.get("found")() == "found"
    registry.register("found", build_two, override=True)
    assert registry.get("found") is build_two
    registry.unregister("found")
    assert registry.get("found")() == "found"
    with pytest.raises(RegistryNotFoundError):
        registry.unregister("found")  # only in-process registrations can be removed


# -- provenance ------------------------------------------------------------------------------------


def test_describe_an_in_process_entry(registry: Registry) -> None:
    registry.register("One", build_one)
    info = registry.describe("one")
    assert isinstance(info, EntryInfo)
    assert (info.key, info.kind, info.source) == ("one", "widget", "in-process")
    assert info.target == f"{__name__}:build_one"
    assert info.file == __file__
    assert info.line == build_one.__code__.co_firstlineno
    assert info.doc == "Builds one."
    assert (info.plugin, info.distribution, info.version) == (None, None, None)
    assert info.as_dict()["target"] == info.target


def test_describe_and_list_do_not_import_a_lazy_entry(module_dir: Path) -> None:
    (module_dir / "lazy_mod.py").write_text(
        '"""A module the registry must not import to describe it."""\n\n\n'
        "class Holder:\n"
        "    def build(self):\n"
        '        """Makes a widget."""\n'
        "        return 'widget'\n"
    )
    registry = Registry("widget", sources=[StaticSource({"lazy": "lazy_mod:Holder.build"})])
    assert registry.list() == ["lazy"]
    assert "lazy" in registry
    info = registry.describe("lazy")
    assert (info.source, info.distribution, info.version) == ("entry-point", "demo-dist", "1.2.3")
    assert info.plugin == "lazy"
    assert info.target == "lazy_mod:Holder.build"
    assert info.file == str(module_dir / "lazy_mod.py")
    assert info.line == 5
    assert info.doc == "Makes a widget."
    assert info.status == "lazy"
    assert "lazy_mod" not in sys.modules
    registry.get("lazy")
    assert "lazy_mod" in sys.modules
    assert registry.describe("lazy").status == "loaded"


# -- lazy loading and its failures -----------------------------------------------------------------


def test_first_get_imports_and_caches(module_dir: Path) -> None:
    counter = module_dir / "imports.txt"
    (module_dir / "counted_mod.py").write_text(
        f"with open({str(counter)!r}, 'a') as fh:\n    fh.write('x')\ndef build():\n    return 1\n"
    )
    registry = Registry("widget", sources=[StaticSource({"counted": "counted_mod:build"})])
    assert not counter.exists()
    factory = registry.get("counted")
    assert registry.get("COUNTED") is factory
    assert counter.read_text() == "x"


def test_broken_entry_raises_load_error_cached_until_reload(module_dir: Path) -> None:
    counter = module_dir / "attempts.txt"
    broken = module_dir / "flaky_mod.py"
    broken.write_text(
        f"with open({str(counter)!r}, 'a') as fh:\n    fh.write('x')\n"
        "raise RuntimeError('flaky_mod is broken')\n"
    )
    (module_dir / "fine_mod.py").write_text("def build():\n    return 'fine'\n")
    source = StaticSource({"flaky": "flaky_mod:build", "fine": "fine_mod:build"})
    registry = Registry("widget", sources=[source])

    assert registry.list() == ["fine", "flaky"]  # listing works despite the broken entry
    with pytest.raises(RegistryLoadError) as first:
        registry.get("flaky")
    assert isinstance(first.value.__cause__, RuntimeError)
    assert "flaky_mod is broken" in str(first.value.__cause__)
    message = str(first.value)
    for expected in ("flaky", "flaky_mod:build", "demo-dist 1.2.3", "reload()"):
        assert expected in message
    assert registry.describe("flaky").status == "failed"
    assert registry.get("fine")() == "fine"  # every other entry still works

    with pytest.raises(RegistryLoadError) as second:
        registry.get("flaky")
    assert second.value.__cause__ is first.value.__cause__
    assert counter.read_text() == "x"  # cached: not imported again

    broken.write_text("def build():\n    return 'repaired, at last'\n")
    registry.reload()
    assert source.refreshes == 1
    assert registry.get("flaky")() == "repaired, at last"
    assert counter.read_text() == "x"


def test_missing_attribute_is_a_load_error(module_dir: Path) -> None:
    (module_dir / "empty_mod.py").write_text("")
    registry = Registry("widget", sources=[StaticSource({"gone": "empty_mod:build"})])
    with pytest.raises(RegistryLoadError) as caught:
        registry.get("gone")
    assert isinstance(caught.value.__cause__, AttributeError)


def test_non_callable_target_is_a_load_error(module_dir: Path) -> None:
    (module_dir / "value_mod.py").write_text("build = 42\n")
    registry = Registry("widget", sources=[StaticSource({"value": "value_mod:build"})])
    with pytest.raises(RegistryLoadError, match="not a callable factory"):
        registry.get("value")


def test_sixteen_threads_load_a_lazy_entry_exactly_once(module_dir: Path) -> None:
    # The attribute is made by a module __getattr__ that returns a new function on
    # every call, slowly: a registry that resolved the entry twice would hand out
    # two different factories and count two resolutions.
    log = module_dir / "log.txt"
    (module_dir / "slow_mod.py").write_text(
        "import time\n"
        f"LOG = {str(log)!r}\n"
        "with open(LOG, 'a') as fh:\n    fh.write('import\\n')\n"
        "time.sleep(0.1)\n\n"
        "def __getattr__(name):\n"
        "    if name != 'build':\n        raise AttributeError(name)\n"
        "    with open(LOG, 'a') as fh:\n        fh.write('resolve\\n')\n"
        "    time.sleep(0.1)\n"
        "    def build():\n        return 'slow'\n"
        "    return build\n"
    )
    registry = Registry("widget", sources=[StaticSource({"slow": "slow_mod:build"})])
    registry.list()  # discovery done up front: the race is about the import
    barrier = threading.Barrier(16)
    results: list[Callable[[], str]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(registry.get("slow"))
        except BaseException as exc:  # reported below, never swallowed
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(results) == 16
    assert len({id(factory) for factory in results}) == 1
    assert log.read_text().splitlines() == ["import", "resolve"]


def test_an_entry_asking_for_itself_at_import_is_a_load_error_naming_the_cycle(
    module_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It used to wait for itself for ever: ``get`` and ``doctor`` hung."""
    registry = Registry("widget", sources=[StaticSource({"selfish": "selfish_mod:build"})])
    monkeypatch.setitem(sys.modules, "cycle_holder", _holder(registry))
    (module_dir / "selfish_mod.py").write_text(
        "import cycle_holder\ncycle_holder.registry.get('selfish')\ndef build():\n    return 1\n"
    )
    with pytest.raises(RegistryLoadError) as caught:
        registry.get("selfish")
    message = str(caught.value)
    assert "asked for itself while it was being imported" in message
    assert "(widget 'selfish' -> widget 'selfish')" in message
    assert isinstance(caught.value.__cause__, RegistryLoadError)  # raised inside its import
    assert registry.describe("selfish").status == "failed"


def test_two_entries_asking_for_each_other_are_a_load_error_naming_the_cycle(
    module_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = StaticSource({"ping": "ping_mod:build", "pong": "pong_mod:build", "fine": "ok:b"})
    registry = Registry("widget", sources=[source])
    monkeypatch.setitem(sys.modules, "cycle_holder", _holder(registry))
    for name, other in (("ping", "pong"), ("pong", "ping")):
        (module_dir / f"{name}_mod.py").write_text(
            f"import cycle_holder\ncycle_holder.registry.get({other!r})\n"
            "def build():\n    return 1\n"
        )
    (module_dir / "ok.py").write_text("def b():\n    return 'fine'\n")
    with pytest.raises(RegistryLoadError) as caught:
        registry.get("ping")
    assert "(widget 'ping' -> widget 'pong' -> widget 'ping')" in str(caught.value)
    assert registry.get("fine")() == "fine"


def _holder(registry: Registry) -> object:
    """A module that test modules import to reach the registry under test."""
    import types

    holder = types.ModuleType("cycle_holder")
    holder.registry = registry  # type: ignore[attr-defined]
    return holder


# -- errors ----------------------------------------------------------------------------------------


def test_not_found_is_a_key_error_with_close_matches_and_the_keys(registry: Registry) -> None:
    registry.register("toy_metric", build_one)
    registry.register("accuracy@token", build_two)
    with pytest.raises(KeyError) as caught:
        registry.get("toy_metrc")
    error = caught.value
    assert isinstance(error, RegistryNotFoundError)
    assert isinstance(error, RegistryError)
    message = str(error)
    assert message.startswith("no widget is registered under 'toy_metrc'")  # not a repr
    assert "Did you mean 'toy_metric'?" in message
    assert "Available widget keys: accuracy@token, toy_metric." in message
    assert error.suggestions == ["toy_metric"]
    assert (error.kind, error.key) == ("widget", "toy_metrc")


def test_not_found_in_an_empty_registry(registry: Registry) -> None:
    with pytest.raises(RegistryNotFoundError, match=r"Available widget keys: \(none\)"):
        registry.describe("anything")


def test_every_error_is_importable_from_the_facade() -> None:
    import codex_ml.registry as facade

    for name in ("RegistryError", "RegistryNotFoundError", "RegistryConflictError"):
        assert issubclass(getattr(facade, name), RegistryError)
    assert issubclass(RegistryLoadError, RegistryError)
    assert issubclass(RegistryNotFoundError, KeyError)
    assert not issubclass(RegistryConflictError, KeyError)


# -- isolation -------------------------------------------------------------------------------------


def test_isolated_undoes_registrations(registry: Registry) -> None:
    registry.register("kept", build_one)
    with registry.isolated():
        registry.register("temp", build_two)
        registry.get("temp")  # a cached lookup must not outlive the block
        registry.unregister("kept")
        assert registry.list() == ["temp"]
    assert registry.list() == ["kept"]
    with pytest.raises(RegistryNotFoundError):
        registry.get("temp")


def test_isolated_restores_on_exception(registry: Registry) -> None:
    with pytest.raises(ZeroDivisionError), registry.isolated():
        registry.register("temp", build_two)
        1 / 0  # noqa: B018
    assert "temp" not in registry


def test_isolated_restores_an_overridden_discovered_entry(module_dir: Path) -> None:
    (module_dir / "found_mod.py").write_text("def build():\n    return 'found'\n")
    registry = Registry("widget", sources=[StaticSource({"found": "found_mod:build"})])
    with registry.isolated():
        registry.register("found", build_two, override=True)
        assert registry.get("found") is build_two
    assert registry.get("found")() == "found"
    assert registry.describe("found").source == "entry-point"


def test_isolated_blocks_nest(registry: Registry) -> None:
    with registry.isolated():
        registry.register("outer", build_one)
        with registry.isolated():
            registry.register("inner", build_two)
        assert registry.list() == ["outer"]
    assert registry.list() == []


def test_temporary_registers_for_the_block_only(registry: Registry) -> None:
    with pytest.raises(RuntimeError), registry.temporary("temp", build_one) as obj:
        assert obj is build_one
        assert registry.get("temp") is build_one
        raise RuntimeError("leave the block")
    assert "temp" not in registry


@pytest.mark.parametrize("base", [None, build_one], ids=["free key", "registered key"])
def test_overlapping_temporary_blocks_end_in_any_order(
    registry: Registry, base: Callable[[], str] | None
) -> None:
    """The first block to open may end first: the key still ends as it was before both."""
    if base is not None:
        registry.register("temp", base)
    first, second = registry.temporary("temp", build_two, override=True), None
    first.__enter__()

    def build_three() -> str:
        return "three"

    second = registry.temporary("temp", build_three, override=True)
    second.__enter__()
    assert registry.get("temp") is build_three
    first.__exit__(None, None, None)
    assert registry.get("temp") is build_three  # the block still open shows
    second.__exit__(None, None, None)
    if base is None:
        assert "temp" not in registry
    else:
        assert registry.get("temp") is base


def test_a_registration_inside_a_temporary_block_is_kept(registry: Registry) -> None:
    with registry.temporary("temp", build_one):
        registry.register("temp", build_two, override=True)
    assert registry.get("temp") is build_two


def _providers(registry: Registry, key: str) -> Sequence[str]:
    return registry.describe(key).providers


def test_ambiguous_discovered_key_lists_but_does_not_resolve(module_dir: Path) -> None:
    (module_dir / "a_mod.py").write_text("def build():\n    return 'a'\n")
    (module_dir / "b_mod.py").write_text("def build():\n    return 'b'\n")
    registry = Registry(
        "widget",
        sources=[
            StaticSource({"shared": "a_mod:build"}, distribution="dist-a"),
            StaticSource({"Shared": "b_mod:build"}, distribution="dist-b"),
        ],
    )
    assert registry.list() == ["shared"]
    assert registry.describe("shared").status == "ambiguous"
    assert len(_providers(registry, "shared")) == 2
    assert set(registry.ambiguous()) == {"shared"}
    with pytest.raises(RegistryConflictError) as caught:
        registry.get("shared")
    message = str(caught.value)
    for expected in ("a_mod:build", "b_mod:build", "dist-a", "dist-b", "override=True"):
        assert expected in message
    assert "CODEX_ML_BLOCK_PLUGINS" in message
    with pytest.raises(RegistryConflictError):
        registry.register("shared", build_one)  # naming it without override is no way out
    registry.register("shared", build_one, override=True)
    assert registry.get("shared") is build_one
    assert registry.ambiguous() == {}


def test_same_target_from_two_sources_is_not_ambiguous(module_dir: Path) -> None:
    (module_dir / "a_mod.py").write_text("def build():\n    return 'a'\n")
    registry = Registry(
        "widget",
        sources=[
            StaticSource({"shared": "a_mod:build"}, distribution="dist-a"),
            StaticSource({"shared": "a_mod:build"}, distribution="dist-a"),
        ],
    )
    assert registry.get("shared")() == "a"


def test_an_in_process_lazy_factory_stays_lazy_and_describes_its_target() -> None:
    from codex_ml.plugins import LazyFactory

    registry = Registry("metric")
    target = "json:dumps"
    registry.register("lazy", LazyFactory(target))
    info = registry.describe("lazy")
    assert (info.status, info.target, info.source) == ("lazy", target, "in-process")
    registry.register("lazy", LazyFactory(target))  # the same target again: a no-op
    import json

    assert registry.get("lazy") is json.dumps
    assert registry.describe("lazy").status == "loaded"
