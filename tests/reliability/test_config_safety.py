"""Configs never import code: a ``_target_``, an import path or a dotted name is refused.

A module that logs its own import sits on ``sys.path`` (so it *could* be
imported) and every config below points at it in one way or another; each is
refused with a message naming the config path at fault, and the log stays
empty. Hydra's own code-loading settings (``hydra.callbacks``, a launcher's
``_target_``, ``hydra.job_logging`` handler classes) are refused by
``codex-ml train`` before Hydra could act on them.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codex_ml.config import ConfigError, reject_instantiation_keys
from codex_ml.config.safety import INSTANTIATION_KEYS

from . import report
from .conftest import ImportLog
from .faults import logged

TARGET = "rf_config_target"
TARGET_SOURCE = """
class Callback:
    def __init__(self, **kwargs):
        pass

def build(**kwargs):
    return None
"""


@pytest.fixture
def target(
    tmp_path: Path, import_log: ImportLog, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ImportLog]:
    """``rf_config_target`` on sys.path (and PYTHONPATH): importable, and logging if imported."""
    folder = tmp_path / "target"
    folder.mkdir()
    (folder / f"{TARGET}.py").write_text(logged(TARGET_SOURCE, import_log.path))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(folder), *filter(None, [os.environ.get("PYTHONPATH")])])
    )
    assert importlib.util.find_spec(TARGET) is not None  # it could be imported
    yield import_log
    leaked = import_log.modules()
    report.record("blocked_imports", len(leaked))
    assert leaked == [] and TARGET not in sys.modules


# -- the key check, on any config ------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
names = st.text(alphabet="abcdefghij_", min_size=1, max_size=6).filter(
    lambda k: k not in INSTANTIATION_KEYS
)
configs = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(names, inner, max_size=3)),
    max_leaves=12,
)


@st.composite
def config_with_a_target(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A config with one instantiation key planted somewhere; its dotted path."""
    config: dict[str, Any] = draw(st.dictionaries(names, configs, min_size=1, max_size=3))
    node: Any = config
    path: list[str] = []
    while True:
        children = (
            [k for k, v in node.items() if isinstance(v, dict)] if isinstance(node, dict) else []
        )
        if not children or not draw(st.booleans()):
            break
        key = draw(st.sampled_from(children))
        node, path = node[key], [*path, key]
    planted = draw(st.sampled_from(sorted(INSTANTIATION_KEYS)))
    node[planted] = f"{TARGET}.build"
    return config, ".".join([*path, planted])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=config_with_a_target(), clean=st.dictionaries(names, configs, max_size=4))
def test_an_instantiation_key_anywhere_is_refused_naming_its_path(
    case: tuple[dict[str, Any], str], clean: dict[str, Any]
) -> None:
    config, path = case
    report.record("bad_inputs_tried")
    with pytest.raises(ConfigError, match="never import code") as caught:
        reject_instantiation_keys(config)
    assert caught.value.where == path
    assert repr(path.split(".")[-1]) in str(caught.value)
    reject_instantiation_keys(clean)  # and a config without one passes


# -- the run's own path: compose, resolve, plan --------------------------------------------------


def composed(*overrides: str) -> Any:
    from hydra import compose, initialize_config_dir

    from codex_ml.resources import configs_dir
    from codex_ml.run.resolvers import register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize(
    "override",
    [
        f"+model._target_={TARGET}.build",
        f"+data._partial_={TARGET}.build",
        f"+metrics.extra={{_target_: {TARGET}.build}}",
        f"+run.hooks=[{{_target_: {TARGET}.build}}]",
    ],
)
def test_a_target_in_the_composed_config_is_refused(override: str, target: ImportLog) -> None:
    from codex_ml.run.assemble import resolve

    report.record("bad_inputs_tried")
    with pytest.raises(ConfigError, match="never import code") as caught:
        resolve(composed(override))
    assert caught.value.where and caught.value.where.split(".")[0] in override.lstrip("+")


@pytest.mark.parametrize("name", [f"{TARGET}:build", f"{TARGET}.build", "os:system", "os.system"])
@pytest.mark.parametrize("group", ["model", "data", "tokenizer"])
def test_an_import_path_as_a_component_name_is_not_a_key(
    name: str, group: str, target: ImportLog
) -> None:
    from codex_ml.run.assemble import plan, resolve

    report.record("bad_inputs_tried")
    config = resolve(composed(f"{group}.name={name}"))
    with pytest.raises(ConfigError) as caught:
        plan(config)
    message = str(caught.value)
    assert caught.value.where == f"{group}.name"
    assert f"registered under {name!r}" in message and "Available" in message


def test_a_value_that_looks_like_an_import_path_stays_data(target: ImportLog) -> None:
    from codex_ml.registry import get_data_loader

    report.record("bad_inputs_tried")
    with pytest.raises(FileNotFoundError, match=f"{TARGET}:build"):
        get_data_loader("lines", path=f"{TARGET}:build")


# -- codex-ml train: Hydra's own code-loading settings --------------------------------------------

HYDRA_OVERRIDES = {
    "callback": f"+hydra.callbacks.rf._target_={TARGET}.Callback",
    "callback as a mapping": f"+hydra.callbacks.rf={{_target_: {TARGET}.Callback}}",
    "launcher": f"hydra.launcher._target_={TARGET}.Callback",
    "logging handler class": f"hydra.job_logging.handlers.console.class={TARGET}.Callback",
}


@pytest.mark.timeout(180)
def test_codex_ml_train_refuses_hydra_settings_that_import_code(
    tmp_path: Path, target: ImportLog
) -> None:
    """Each in a fresh ``python -m codex_ml.cli train``, run side by side."""
    started = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "codex_ml.cli",
                "train",
                f"hydra.run.dir={tmp_path / 'run'}",
                "training.max_steps=1",
                override,
            ],
            cwd=tmp_path,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, override in HYDRA_OVERRIDES.items()
    }
    for name, process in started.items():
        _, stderr = process.communicate(timeout=170)
        report.record("bad_inputs_tried")
        assert process.returncode == 2, (name, stderr)
        assert stderr.startswith("codex-ml train: error: hydra."), (name, stderr)
        assert "never import code" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "run").exists()  # refused before a run directory was made
