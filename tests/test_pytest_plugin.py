"""The pytest plugin shipped with codex-ml: its fixtures keep registrations from leaking.

An inner test session (``pytester``) registers in one test and looks in the
next, so the order between tests is real. The inner session runs in this
process, through the ``pytest11`` entry point as a user's would, and shares
this process's registries.
"""

from __future__ import annotations

import importlib.metadata

import pytest

import codex_ml.registry as facade

pytest_plugins = ["pytester"]

INNER_TESTS = """
from codex_ml.registry import list_metrics, metric_registry, register_metric, register_model


def build():
    return lambda preds, targets: 0.5


def test_registers_with_isolated_registries(isolated_registries):
    register_metric("inner-isolated", build)
    register_model("inner-model", build)
    assert "inner-isolated" in isolated_registries["metric"]


def test_isolated_registration_is_gone():
    assert "inner-isolated" not in list_metrics()


def test_overrides_a_builtin_with_codex_registry(codex_registry):
    metrics = codex_registry("metric")
    metrics.register("ppl", build, override=True)
    metrics.register("inner-codex", build)
    assert metrics.describe("ppl").source == "in-process"
    raise AssertionError("fails on purpose: cleanup must not depend on passing")


def test_codex_registry_restored_after_a_failure():
    assert "inner-codex" not in list_metrics()
    assert metric_registry.describe("ppl").source == "builtin"


def test_registers_without_a_fixture():
    register_metric("inner-leak", build)


def test_without_a_fixture_it_leaks():
    # The control: the fixtures, not test order, are what make the others pass.
    assert "inner-leak" in list_metrics()
"""


def test_fixtures_come_from_the_pytest11_entry_point() -> None:
    (entry,) = [
        ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.name == "codex_ml"
    ]
    assert entry.value == "codex_ml.testing.pytest_plugin"


def test_fixtures_isolate_registrations_between_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER_TESTS)
    with facade.isolated():  # the control test leaks into this process on purpose
        result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(["E * AssertionError: fails on purpose*"])
    assert not {"inner-isolated", "inner-codex", "inner-leak"} & set(facade.list_metrics())
    assert "inner-model" not in facade.list_models()
    assert facade.metric_registry.describe("ppl").source == "builtin"
