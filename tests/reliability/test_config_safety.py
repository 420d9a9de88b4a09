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
import json
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


# -- codex-ml train: every other way YAML could reach Hydra's code paths ---------------------------

#: Presets a hostile ``-cd`` folder holds: each names the logged target module in a way that
#: ``@hydra.main`` would import and call (file -> content).
HOSTILE_PRESETS = {
    "hydra/job_logging/evil.yaml": f"version: 1\nhandlers:\n  h:\n    (): {TARGET}.build\n"
    "root:\n  handlers: [h]\n",
    "hydra/launcher/evil.yaml": f"_target_: {TARGET}.Callback\n",
    "experiment/callback.yaml": "# @package _global_\n"
    f"hydra:\n  callbacks:\n    cb:\n      _target_: {TARGET}.Callback\n",
    "experiment/unblock.yaml": "# @package _global_\n"
    "hydra:\n  job:\n    env_set:\n      CODEX_ML_BLOCK_PLUGINS: ''\n",
    "data/logging.yaml": "# @package _global_\ndefaults:\n  - /data/offline/tiny_corpus@data\n"
    f"hydra:\n  job_logging:\n    handlers:\n      h:\n        (): {TARGET}.build\n",
    "searching.yaml": "defaults:\n  - train\n  - _self_\n"
    f"hydra:\n  searchpath: ['pkg://{TARGET}_pkg']\n",
}

#: The attacks found from outside: (arguments, the hydra key the error must name).
HOSTILE_INVOCATIONS = {
    "job_logging group from -cd": (["hydra/job_logging=evil"], "hydra/job_logging"),
    "hydra_logging by relative path": (
        ["hydra/hydra_logging=../job_logging/evil"],
        "hydra/hydra_logging",
    ),
    "launcher in a multirun": (["-m", "hydra/launcher=evil"], "hydra/launcher"),
    "searchpath file:// override": (["hydra.searchpath=[file://{presets}]"], "hydra.searchpath"),
    "searchpath pkg:// override": ([f"hydra.searchpath=[pkg://{TARGET}_pkg]"], "hydra.searchpath"),
    "preset sets hydra.callbacks": (["+experiment=callback"], "hydra.callbacks"),
    "_global_ data preset sets job_logging": (["data=logging"], "hydra.job_logging"),
    "preset un-blocks a plugin with env_set": (["+experiment=unblock"], "hydra.job.env_set"),
    "primary preset sets hydra.searchpath": (["-cn", "searching"], "hydra.searchpath"),
}


@pytest.fixture
def hostile_presets(tmp_path: Path, target: ImportLog) -> Path:
    """A ``-cd`` folder of hostile presets, and a package ``pkg://`` could import (logged)."""
    presets = tmp_path / "presets"
    for name, text in HOSTILE_PRESETS.items():
        (presets / name).parent.mkdir(parents=True, exist_ok=True)
        (presets / name).write_text(text)
    package = Path(importlib.util.find_spec(TARGET).origin).parent / f"{TARGET}_pkg"  # type: ignore[arg-type]
    package.mkdir()
    (package / "__init__.py").write_text(logged("", target.path))
    return presets


@pytest.mark.timeout(240)
def test_no_preset_override_or_search_path_makes_hydra_import_code(
    tmp_path: Path, hostile_presets: Path, target: ImportLog
) -> None:
    """Each attack in a fresh ``codex-ml train``: refused, exit 2, naming the key; nothing ran."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CODEX_ML_BLOCK_PLUGINS": "codex-ml-toy-hooks"}
    started = {}
    for name, (args, _) in HOSTILE_INVOCATIONS.items():
        argv = [a.format(presets=hostile_presets) for a in args]
        started[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "codex_ml.cli",
                "train",
                "-cd",
                str(hostile_presets),
                *argv,
                "training.max_steps=1",
                "run.progress=false",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for name, process in started.items():
        _, stderr = process.communicate(timeout=200)
        report.record("bad_inputs_tried")
        key = HOSTILE_INVOCATIONS[name][1]
        assert process.returncode == 2, (name, stderr)
        assert stderr.startswith(f"codex-ml train: error: {key}"), (name, stderr)
        assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, (name, stderr)
    assert not (tmp_path / "runs").exists()  # refused before a run directory was made


def test_a_primary_presets_search_path_is_never_followed_even_unchecked(
    hostile_presets: Path, target: ImportLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: codex-ml's own (empty) search path wins over the preset's."""
    from codex_ml.run import compose

    monkeypatch.setattr(compose, "check_primary_preset", lambda *args: None)
    report.record("bad_inputs_tried")
    cfg = compose.compose_config("searching", [], [hostile_presets])
    assert list(cfg.hydra.searchpath) == []


def test_a_secret_read_from_the_environment_is_not_written_in_clear(tmp_path: Path) -> None:
    """``${oc.env:...}`` of a secret-looking variable: used by the run, redacted on disk."""
    secret = "AKIA-very-secret-value-123"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a line of text to train on\n" * 50)
    link_dir = tmp_path / secret  # the value must work: it names the data file's folder
    link_dir.mkdir()
    (link_dir / "corpus.txt").write_text(corpus.read_text())
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "codex_ml.cli", "train", f"hydra.run.dir={run_dir}"),
            *("model=offline/minilm", "data=offline/lines", "training.max_steps=1"),
            *("training.eval_every=0", "run.sample_prompts=[]", "run.progress=false"),
            f"data.path={tmp_path}/${{oc.env:AWS_SECRET_ACCESS_KEY}}/corpus.txt",
        ],
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "AWS_SECRET_ACCESS_KEY": secret},
        capture_output=True,
        text=True,
        timeout=200,
    )
    report.record("bad_inputs_tried")
    assert result.returncode == 0, result.stderr
    for name in ("config.yaml", "summary.json"):
        assert secret not in (run_dir / name).read_text(), name
    from omegaconf import OmegaConf

    marked = f"{tmp_path}/<redacted: $AWS_SECRET_ACCESS_KEY>/corpus.txt"
    assert OmegaConf.load(run_dir / "config.yaml").data.path == marked
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["components"]["data"]["kwargs"]["path"] == marked
    assert summary["status"] == "completed"
