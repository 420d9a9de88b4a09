"""The Hydra presets: each fragment composes and builds, paths follow env vars, nothing imports.

Configs are composed with Hydra's compose API against the shipped presets
(``codex_ml.resources.configs_dir()``), resolved and checked the way
``codex-ml train`` does it (``codex_ml.run.assemble``), and every component they
name is built -- the Hugging Face ones against tiny artefacts made for the session.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir

from codex_ml.catalogue.plugin import CATALOGUE
from codex_ml.config import ConfigError
from codex_ml.resources import configs_dir, project_root
from codex_ml.run.assemble import (
    GROUP_KINDS,
    LIST_GROUPS,
    METRIC_INPUTS,
    Plan,
    build,
    build_callbacks,
    build_metrics,
    plan,
    resolve,
    training_parts,
)
from codex_ml.run.assemble import build_model as build_run_model

pytest_plugins = ["cli_fixtures"]

GROUPS = (*GROUP_KINDS, *LIST_GROUPS)


def fragments(group: str) -> list[str]:
    """The presets of a config group (``offline/...`` and top-level), as Hydra names them."""
    root = configs_dir() / group
    found = [*root.glob("offline/*.yaml"), *root.glob("*.yaml")]
    return sorted(str(p.relative_to(root).with_suffix("")) for p in found)


ALL_FRAGMENTS = [(group, name) for group in GROUPS for name in fragments(group)]


@contextmanager
def hydra_configs() -> Iterator[None]:
    with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
        yield


def compose_resolved(overrides: Sequence[str] = (), config_name: str = "train") -> dict[str, Any]:
    """A preset composed with ``overrides`` and resolved, as ``codex-ml train`` sees it."""
    with hydra_configs():
        return resolve(compose(config_name, overrides=list(overrides)))


@pytest.fixture
def artefacts(artefact_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny artefact tree as the project root; no other location variable set."""
    for name in ("CODEX_ML_GPT2_DIR", "CODEX_ML_TINYLLAMA_DIR", "CODEX_ML_ARTIFACTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CODEX_ML_PROJECT_ROOT", str(artefact_root))
    return artefact_root


# --- what ships -------------------------------------------------------------------


def test_the_presets_the_spec_names_exist() -> None:
    for group, name in [
        ("model", "offline/gpt2"),
        ("model", "offline/tinyllama"),
        ("tokenizer", "offline/gpt2"),
        ("tokenizer", "offline/tinyllama"),
        ("data", "offline/tiny_corpus"),
        ("metrics", "offline/weighted_accuracy"),
        ("training", "offline/functional"),
        ("reward_model", "offline/heuristic"),
    ]:
        assert name in fragments(group), f"{group}={name}"
    assert (configs_dir() / "offline" / "catalogue.yaml").is_file()


def _keys_named(group: str, name: str) -> set[str]:
    from omegaconf import OmegaConf

    node = OmegaConf.load(configs_dir() / group / f"{name}.yaml")
    if group in LIST_GROUPS:
        return {entry["name"] for key, entry in node.items() if key != "defaults"}
    return {node["name"]}


def test_every_catalogue_entry_has_a_fragment() -> None:
    kinds = {kind: group for group, kind in (GROUP_KINDS | LIST_GROUPS).items()}
    for kind, keys in CATALOGUE.items():
        group = kinds[kind]
        named = set().union(*(_keys_named(group, name) for name in fragments(group)))
        assert set(keys) <= named, f"{kind}: no fragment names {set(keys) - named}"


def test_no_shipped_config_imports_anything() -> None:
    for path in configs_dir().rglob("*.yaml"):
        text = path.read_text()
        for key in ("_target_", "_partial_", "_args_"):
            assert key not in text, f"{path}: {key}"


# --- every fragment composes and builds ------------------------------------------


#: What a fragment with a mandatory (``???``) value needs to compose.
def _required(group: str, name: str, root: Path, tmp_path: Path) -> list[str]:
    if (group, name) == ("data", "offline/lines"):
        lines = tmp_path / "records.txt"
        lines.write_text("first record\nsecond record\n\nthird record\n")
        return [f"data.path={lines}"]
    if (group, name) == ("data", "offline/files"):
        tree = tmp_path / "tree"
        (tree / "pkg").mkdir(parents=True)
        (tree / "pkg" / "__init__.py").write_text("'''a package'''\n")
        (tree / "pkg" / "core.py").write_text("def f():\n    return 1\n")
        return [f"data.path={tree}"]
    gpt2 = root / "artifacts" / "models" / "gpt2"
    if (group, name) == ("tokenizer", "offline/hf"):
        return [f"tokenizer.name_or_path={gpt2}"]
    if (group, name) == ("model", "offline/hf"):
        return [f"tokenizer.name_or_path={gpt2}", f"model.path={gpt2}"]
    return []


def _tokenizer_for(group: str, name: str) -> list[str]:
    # A Hugging Face model needs its own tokenizer; the in-repo models take any.
    if group == "model" and name in fragments("tokenizer"):
        return [f"tokenizer={name}"]
    return []


def _forward(model: Any, tokenizer: Any, text: str = "The quick brown fox") -> Any:
    import torch

    ids = torch.tensor([tokenizer.encode(text)])
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.shape[:2] == ids.shape
    assert logits.shape[-1] >= tokenizer.vocab_size
    return logits


#: Inputs for a metric of each kind, and what the catalogue's metrics give for them.
METRIC_CALLS = {
    "token-nll": (([0.5, 1.0, 1.5],), {"ppl": math.e}),
    "token-ids": (([1, 2, 3], [1, 2, 4]), {"accuracy@token": 2 / 3}),
    "generations": ((["a b c", "a b d"],), {"dist-1": 4 / 6, "dist-2": 3 / 4}),
    "references": (
        (["positive", "negative"], ["positive", "neutral"]),
        {"exact_match": 0.5, "f1": 0.5, "offline:weighted-accuracy": 1.0 / 1.5},
    ),
}


def _check_group(group: str, p: Plan, config: dict[str, Any], output_dir: Path) -> None:
    """Build the component of ``group`` and use it once."""
    if group == "metrics":
        built = build_metrics(p)
        assert set(built) == set(config["metrics"])
        for alias, (metric, metric_input) in built.items():
            assert metric_input in METRIC_INPUTS
            args, expected = METRIC_CALLS[metric_input]
            key = config["metrics"][alias]["name"]
            assert metric(*args) == pytest.approx(expected[key]), alias
        return
    if group == "callbacks":
        for alias, key, callback in build_callbacks(p):
            assert key == config["callbacks"][alias]["name"]
            assert any(hasattr(callback, m) for m in ("on_log", "on_evaluate", "on_train_end"))
        return
    if group in ("optimizer", "scheduler"):
        import torch

        from codex_ml.training.optim import parameter_groups

        model = torch.nn.Linear(4, 4)
        optimizer = training_parts(p)["optimizer"](parameter_groups(model, 0.1), lr=1e-3)
        model(torch.ones(2, 4)).sum().backward()
        optimizer.step()
        schedule = training_parts(p)["scheduler"](lr=1e-3, max_steps=100, warmup_steps=10)
        rates = [schedule(step) for step in range(1, 101)]
        assert rates[9] == pytest.approx(1e-3) and all(0.0 <= r <= 1e-3 for r in rates)
        return
    if group == "adapter":
        if "adapter" in p.specs:  # the model as the run trains it: some, not all, of it trains
            model = build_run_model(p, build(p, "tokenizer"))
            trains = [p.requires_grad for p in model.parameters()]
            assert any(trains) and not all(trains)
        return
    if group in ("tokenizer", "model"):
        from codex_ml.run.tokenizer import run_tokenizer

        tokenizer = run_tokenizer(p)  # as a run builds it: one that trains, on the training split
        ids = tokenizer.encode("hello world")
        assert ids and all(isinstance(i, int) for i in ids)
        assert "hello world" in tokenizer.decode(ids)
        if group == "model":
            _forward(build_run_model(p, tokenizer), tokenizer)
        return
    extra = {"output_dir": str(output_dir)} if group == "training" else {}
    component = build(p, group, **extra)
    if group == "data":
        records = list(component)
        if config["data"].get("prompt_field") or config["data"].get("messages_field"):
            from codex_ml.data.examples import Chat, PromptCompletion

            assert records and all(isinstance(r, PromptCompletion | Chat) for r in records)
        else:
            assert records and all(isinstance(r, str) and r.strip() for r in records)
    elif group == "training":
        settings = {k: v for k, v in config["training"].items() if k not in ("name", "resume")}
        assert {k: component.config()[k] for k in settings} == settings
    elif group == "reward_model":
        score = component.evaluate("How do I list files?", "Use ls, because it lists them.")
        assert -1.0 <= score <= 1.0


@pytest.mark.parametrize(
    ("group", "name"), ALL_FRAGMENTS, ids=[f"{g}={n}" for g, n in ALL_FRAGMENTS]
)
def test_every_fragment_composes_and_builds(
    group: str, name: str, artefacts: Path, tmp_path: Path
) -> None:
    overrides = [
        f"{group}={name}",
        *_tokenizer_for(group, name),
        *_required(group, name, artefacts, tmp_path),
    ]
    config = compose_resolved(overrides)
    p = plan(config)
    if group not in LIST_GROUPS:
        assert p.specs[group].name == config[group]["name"]
    _check_group(group, p, config, tmp_path)


def test_the_catalogue_preset_composes_and_builds_a_complete_run(
    artefacts: Path, tmp_path: Path
) -> None:
    config = compose_resolved(config_name="offline/catalogue")
    p = plan(config)
    keys = {group: spec.name for group, spec in p.specs.items()}
    assert keys == {
        "tokenizer": "gpt2-offline",
        "model": "gpt2-offline",
        "data": "offline:tiny-corpus",
        "training": "offline:functional",
        "reward_model": "offline:heuristic",
        "optimizer": "adamw",
        "scheduler": "cosine",
    }
    gpt2 = artefacts / "artifacts" / "models" / "gpt2"
    assert config["model"]["path"] == config["tokenizer"]["path"] == str(gpt2)
    assert {m.spec.name for m in p.metrics} >= {"ppl", "exact_match", "offline:weighted-accuracy"}
    for group in GROUPS:
        _check_group(group, p, config, tmp_path)


def test_mandatory_values_are_asked_for_by_their_config_path() -> None:
    with pytest.raises(ConfigError) as caught:
        compose_resolved(["data=offline/lines"])
    assert caught.value.where == "data.path"
    assert "data.path=" in str(caught.value)


# --- artefact paths: ${oc.env:...} with documented defaults ------------------------

_DIRS = {"gpt2": "CODEX_ML_GPT2_DIR", "tinyllama": "CODEX_ML_TINYLLAMA_DIR"}


@pytest.mark.parametrize("artefact", sorted(_DIRS))
def test_artefact_paths_default_to_the_project_root(
    artefact: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (*_DIRS.values(), "CODEX_ML_ARTIFACTS_DIR", "CODEX_ML_PROJECT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    config = compose_resolved([f"tokenizer=offline/{artefact}", f"model=offline/{artefact}"])
    expected = str(project_root() / "artifacts" / "models" / artefact)
    assert config["tokenizer"]["path"] == config["model"]["path"] == expected


@pytest.mark.parametrize("artefact", sorted(_DIRS))
def test_artefact_paths_follow_the_environment_variables(
    artefact: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    overrides = [f"tokenizer=offline/{artefact}", f"model=offline/{artefact}"]
    monkeypatch.delenv(_DIRS[artefact], raising=False)
    monkeypatch.delenv("CODEX_ML_ARTIFACTS_DIR", raising=False)
    monkeypatch.setenv("CODEX_ML_PROJECT_ROOT", str(tmp_path / "root"))
    assert compose_resolved(overrides)["model"]["path"] == str(
        tmp_path / "root" / "artifacts" / "models" / artefact
    )
    monkeypatch.setenv("CODEX_ML_ARTIFACTS_DIR", str(tmp_path / "shared"))
    assert compose_resolved(overrides)["model"]["path"] == str(
        tmp_path / "shared" / "models" / artefact
    )
    monkeypatch.setenv(_DIRS[artefact], str(tmp_path / "own"))  # the artefact's own wins
    config = compose_resolved(overrides)
    assert config["tokenizer"]["path"] == config["model"]["path"] == str(tmp_path / "own")


def test_components_build_from_where_the_environment_points(
    artefact_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    models = artefact_root / "artifacts" / "models"
    monkeypatch.setenv("CODEX_ML_PROJECT_ROOT", str(tmp_path))  # holds nothing
    monkeypatch.setenv("CODEX_ML_ARTIFACTS_DIR", str(artefact_root / "artifacts"))
    monkeypatch.setenv("CODEX_ML_TINYLLAMA_DIR", str(models / "tinyllama"))
    monkeypatch.delenv("CODEX_ML_GPT2_DIR", raising=False)
    for artefact in ("gpt2", "tinyllama"):
        config = compose_resolved([f"tokenizer=offline/{artefact}", f"model=offline/{artefact}"])
        p = plan(config)
        tokenizer = build(p, "tokenizer")
        _forward(build_run_model(p, tokenizer), tokenizer)
        assert config["model"]["path"] == str(models / artefact)


# --- configs never import, and are checked before anything is built -----------------

_IMPORT_ATTEMPTS = """
import json, sys
from hydra import compose, initialize_config_dir
from codex_ml.config import ConfigError
from codex_ml.resources import configs_dir
from codex_ml.run.assemble import plan, resolve

results = {}
for override in OVERRIDES:
    with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[override])
    try:
        plan(resolve(cfg))
    except ConfigError as exc:
        results[override] = {"where": exc.where, "message": str(exc)}
    else:
        results[override] = None
print(json.dumps({"results": results, "imported": "evil_marker" in sys.modules}))
"""


def test_target_keys_are_refused_and_nothing_is_imported(tmp_path: Path, run_python) -> None:
    (tmp_path / "evil_marker.py").write_text(
        "from pathlib import Path\n"
        "Path(__file__).with_name('imported').write_text('yes')\n"
        "def build(**kwargs):\n    return None\n"
    )
    attempts = {
        "+model._target_=evil_marker.build": "model._target_",
        "+_target_=evil_marker.build": "_target_",
        "+metrics.ppl._target_=evil_marker.build": "metrics.ppl._target_",
        "+run.callback={_target_: evil_marker.build}": "run.callback._target_",
        "+training._partial_=true": "training._partial_",
    }
    code = _IMPORT_ATTEMPTS.replace("OVERRIDES", repr(list(attempts)))
    result = run_python(code, sys_path=[tmp_path])
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["imported"] is False
    assert not (tmp_path / "imported").exists()
    for override, where in attempts.items():
        error = report["results"][override]
        assert error is not None, f"{override} was accepted"
        assert error["where"] == where
        assert "never import" in error["message"] and "registry key" in error["message"]


@pytest.mark.parametrize(
    ("override", "where", "key", "close"),
    [
        ("+model.n_layr=2", "model.n_layr", "'decoder_only'", "'n_layer'"),
        ("+data.shufle=true", "data.shufle", "'offline:tiny-corpus'", "'shuffle'"),
        ("+training.lrr=0.1", "training.lrr", "'offline:functional'", "'lr'"),
        ("+reward_model.max_word=5", "reward_model.max_word", "'offline:heuristic'", "'max_words'"),
        ("+metrics.ppl.ignore_idx=0", "metrics.ppl.ignore_idx", "'ppl'", "'ignore_index'"),
        ("+tokenizer.add_bo=true", "tokenizer.add_bo", "'bytes'", "'add_bos'"),
    ],
)
def test_a_kwarg_typo_names_the_key_the_name_the_accepted_names_and_a_close_match(
    override: str, where: str, key: str, close: str
) -> None:
    config = compose_resolved([override])
    with pytest.raises(ConfigError) as caught:
        plan(config)
    message = str(caught.value)
    assert caught.value.where == where
    bad = where.rsplit(".", 1)[1]
    assert f"'{bad}'" in message and key in message
    assert f"Did you mean {close}?" in message
    assert "It accepts:" in message


def test_a_typo_stops_the_run_before_any_component_is_built(
    tmp_path: Path, codex_registry: Any
) -> None:
    from codex_ml.run.assemble import checked_plan
    from codex_ml.run.train import TrainJob, train_job
    from codex_ml.world import Process

    built = []

    def recording_tokenizer() -> Any:
        """Records that it was built."""
        built.append("tokenizer")
        raise AssertionError("built before the config was checked")

    codex_registry("tokenizer").register("recording", recording_tokenizer)
    with hydra_configs():
        cfg = compose("train", overrides=["tokenizer.name=recording", "+training.lrr=0.1"])
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"training\.lrr"):
        train_job(TrainJob(checked_plan(cfg), cfg, run_dir, "train", [], [], Process()))
    assert built == []
    assert not run_dir.exists()


def test_an_unknown_metric_input_kind_is_refused() -> None:
    config = compose_resolved(["metrics.ppl.input=tokens"])
    with pytest.raises(ConfigError) as caught:
        plan(config)
    assert caught.value.where == "metrics.ppl.input"
    for kind in METRIC_INPUTS:
        assert kind in str(caught.value)
