"""Adapters, the tenth kind: ``adapter=lora`` and ``adapter=freeze`` fine-tune part of a model.

Unit tests first (the adapters, their checkpoints, the original codex-ml's
``get_model(name, {"lora": ...})``), then the command line: the runs of
``AdapterRuns`` are trained side by side once, and the commands that read
them (resume, evaluate, generate, export) run side by side once more; each
test reads one result. Last, an adapter run under ``torchrun`` (DDP, Gloo).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import TINY, Command, Run, assert_succeeded, assert_user_error
from cli_helpers import run_concurrently as run_side_by_side

from codex_ml.registry import get_adapter, get_model, list_adapters
from codex_ml.testing.contracts import check_component

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

pytest_plugins = ["cli_fixtures"]

PROMPTS = ("Once upon a time", "The old machine")
NEW_TOKENS = 24


def _minilm(seed: int = 0) -> Any:
    return get_model("minilm", seed=seed)


def _not_lora(state: dict[str, Any]) -> set[str]:
    return {name for name in state if ".lora_" not in name}


def _logits(model: Any, ids: Any) -> Any:
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Hugging Face GPT-2 folder of this module's own (its files are hashed)."""
    from codex_ml.testing.artefacts import make_tiny_gpt2

    return make_tiny_gpt2(tmp_path_factory.mktemp("gpt2") / "gpt2")


# --- the kind and its built-in keys ----------------------------------------------------------


def test_lora_and_freeze_are_adapter_keys() -> None:
    assert {"lora", "freeze"} <= set(list_adapters())


@pytest.mark.parametrize(
    ("key", "kwargs"),
    [
        ("lora", {}),
        ("lora", {"r": 2, "target_modules": ["mlp.fc", "attn.proj"], "dropout": 0.0}),
        ("freeze", {}),
        ("freeze", {"trainable": ["blocks.1.*", "ln_f.*"]}),
    ],
)
def test_the_built_in_adapters_keep_the_contract(key: str, kwargs: dict[str, Any]) -> None:
    checked = check_component("adapter", key, **kwargs)
    assert "a save/load round trip gives the same outputs" in checked
    assert "merge gives the same outputs as the unmerged model" in checked


def test_a_third_party_adapter_plugs_in_with_the_same_contract(isolated_registries: Any) -> None:
    from codex_ml.adapters.parameters import TrainsParameters
    from codex_ml.registry import register_adapter

    class BiasOnly(TrainsParameters):
        """Train the layer norms' weights of the last block only."""

        def apply(self, model: Any) -> Any:
            for name, parameter in model.named_parameters():
                parameter.requires_grad_(name.startswith("blocks.1.ln_"))
            return model

        def merge(self, model: Any) -> Any:
            return model

    register_adapter("acme-last-norms", BiasOnly)
    assert "acme-last-norms" in list_adapters()
    check_component("adapter", "acme-last-norms")


def test_an_adapter_missing_a_method_breaks_the_contract(isolated_registries: Any) -> None:
    from codex_ml.registry import register_adapter

    class ApplyOnly:
        def apply(self, model: Any) -> Any:
            return model

    register_adapter("acme-broken", ApplyOnly)
    with pytest.raises(AssertionError, match="lacks"):
        check_component("adapter", "acme-broken")


def test_lora_wraps_the_decoder_attention_in_place_and_trains_only_itself() -> None:
    model = _minilm()
    total = sum(p.numel() for p in model.parameters())
    adapted = get_adapter("lora", r=4).apply(model)
    assert adapted is model and type(model).__name__ == "DecoderOnlyLM"
    training = [n for n, p in model.named_parameters() if p.requires_grad]
    assert training and all(".lora_" in n for n in training)
    assert {n.split(".lora_")[0].split(".", 2)[2] for n in training} == {"attn.qkv", "attn.proj"}
    assert sum(p.numel() for p in model.parameters()) > total


@pytest.mark.parametrize(
    ("maker", "wrapped"),
    [
        ("make_tiny_gpt2", {"attn.c_attn"}),
        ("make_tiny_llama", {"self_attn.q_proj", "self_attn.v_proj"}),
    ],
)
def test_lora_defaults_follow_the_hugging_face_architecture(
    tmp_path: Path, maker: str, wrapped: set[str]
) -> None:
    from codex_ml.adapters.lora import adapted_layers
    from codex_ml.testing import artefacts

    folder = getattr(artefacts, maker)(tmp_path / maker)
    model = get_adapter("lora").apply(get_model("hf", path=str(folder)))
    found = {".".join(name.split(".")[-2:]) for name in adapted_layers(model)}
    assert found == wrapped


def test_lora_refuses_a_target_that_matches_no_module_naming_the_layers() -> None:
    with pytest.raises(ValueError, match=r"'attn\.qvk' matches no module") as caught:
        get_adapter("lora", target_modules=["attn.qkv", "attn.qvk"]).apply(_minilm())
    assert "Did you mean 'attn.qkv'" in str(caught.value)
    assert "mlp.fc" in str(caught.value)  # the layers it could name


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"r": 0}, "r=0"),
        ({"alpha": -1}, "alpha"),
        ({"dropout": 1.0}, "dropout"),
        ({"target_modules": []}, "non-empty"),
    ],
)
def test_lora_refuses_bad_settings_when_built(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        get_adapter("lora", **kwargs)


def test_freeze_trains_what_the_globs_name_tied_names_included() -> None:
    model = get_adapter("freeze", trainable=["lm_head.weight", "blocks.1.*"]).apply(_minilm())
    training = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "wte.weight" in training  # the same tensor as lm_head.weight
    assert {n for n in training if n.startswith("blocks.")} == {
        n for n, _ in model.named_parameters() if n.startswith("blocks.1.")
    }
    assert not any(n.startswith("blocks.0.") for n in training)


def test_freeze_by_default_trains_the_norm_layers() -> None:
    model = get_adapter("freeze").apply(_minilm())
    training = {n for n, p in model.named_parameters() if p.requires_grad}
    assert training == {n for n, _ in model.named_parameters() if ".ln_" in n or "ln_f" in n}


def test_freeze_refuses_a_glob_that_matches_nothing() -> None:
    with pytest.raises(ValueError, match=r"'blocks\.1' matches none of the"):
        get_adapter("freeze", trainable=["ln_f.*", "blocks.1"]).apply(_minilm())


# --- the original codex-ml's model config --------------------------------------------------------


def test_legacy_model_config_with_lora_enabled_applies_lora() -> None:
    from codex_ml.training.checkpoint.trainable import adapted

    model = get_model("MiniLM", {"lora": {"enabled": True, "r": 4}, "seed": 0})
    note = adapted(model)
    assert note is not None and note.name == "lora" and note.kwargs == {"r": 4}
    assert model.blocks[0].attn.qkv.lora_A["default"].weight.shape[0] == 4
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0 < trainable < sum(p.numel() for p in model.parameters())


def test_legacy_model_config_takes_the_old_names_and_a_disabled_section() -> None:
    from codex_ml.training.checkpoint.trainable import adapted

    model = get_model("minilm", {"lora": {"enabled": True, "lora_alpha": 8, "lora_dropout": 0.0}})
    assert adapted(model) is not None
    assert adapted(model).kwargs == {"alpha": 8, "dropout": 0.0}  # type: ignore[union-attr]
    plain = get_model("minilm", {"lora": {"enabled": False, "r": 4}})
    assert adapted(plain) is None and all(p.requires_grad for p in plain.parameters())


# --- checkpoints hold only what trains -----------------------------------------------------------


def _adapted(seed: int = 0, **kwargs: Any) -> Any:
    from codex_ml.training.checkpoint.trainable import adapt

    settings = {"r": 4, "dropout": 0.0, **kwargs}
    return adapt(_minilm(seed), get_adapter("lora", **settings), name="lora", kwargs=settings)


def _trained(model: Any) -> Any:
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.05)
    return model


def test_an_adapter_checkpoint_holds_the_adapter_alone_and_loads_back(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from codex_ml.training.checkpoint import load_checkpoint, save_checkpoint

    model = _trained(_adapted())
    ids = torch.randint(0, 259, (2, 12), generator=torch.Generator().manual_seed(0))
    expected = _logits(model, ids)
    path = save_checkpoint(tmp_path, step=1, model=model, state={}, config={}, keep=1)
    weights = load_file(str(path / "model.safetensors"))
    assert weights and not _not_lora(weights)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["adapter"]["name"] == "lora" and meta["adapter"]["kwargs"]["r"] == 4
    fresh = _adapted()
    assert not torch.allclose(_logits(fresh, ids), expected)
    load_checkpoint(path, fresh)
    assert torch.allclose(_logits(fresh, ids), expected)


@pytest.mark.parametrize(
    ("load_into", "needle"),
    [
        (lambda: _minilm(), "holds only the weights adapter 'lora' trained"),
        (lambda: _adapted(seed=1), "trained on another base model"),
        (lambda: _adapted(r=2), "was trained with adapter 'lora'"),
    ],
)
def test_an_adapter_checkpoint_is_refused_by_a_model_built_otherwise(
    tmp_path: Path, load_into: Any, needle: str
) -> None:
    from codex_ml.training.checkpoint import load_checkpoint, save_checkpoint
    from codex_ml.training.errors import CheckpointError

    path = save_checkpoint(
        tmp_path, step=1, model=_trained(_adapted()), state={}, config={}, keep=1
    )
    model = load_into()
    before = {n: p.detach().clone() for n, p in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=needle):
        load_checkpoint(path, model)
    assert all(torch.equal(before[n], p) for n, p in model.state_dict().items())


def test_a_whole_model_checkpoint_is_refused_by_an_adapted_model(tmp_path: Path) -> None:
    from codex_ml.training.checkpoint import load_checkpoint, save_checkpoint
    from codex_ml.training.errors import CheckpointError

    path = save_checkpoint(tmp_path, step=1, model=_minilm(), state={}, config={}, keep=1)
    with pytest.raises(CheckpointError, match="checkpoint of the whole model"):
        load_checkpoint(path, _adapted())


def test_a_forged_adapter_record_is_refused_naming_it(tmp_path: Path) -> None:
    from codex_ml.training.checkpoint import load_checkpoint, save_checkpoint
    from codex_ml.training.errors import CheckpointError

    path = save_checkpoint(
        tmp_path, step=1, model=_trained(_adapted()), state={}, config={}, keep=1
    )
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps({**meta, "adapter": ["lora"]}))
    with pytest.raises(CheckpointError, match="records its adapter as list"):
        load_checkpoint(path, _adapted())


def test_a_train_config_without_adapter_composes_as_before() -> None:
    from codex_ml.run.assemble import plan, resolve
    from codex_ml.run.compose import compose_config

    config = resolve(compose_config("train", []))
    assert "adapter" not in config and "adapter" not in plan(config, load=False).specs
    chosen = resolve(compose_config("train", ["adapter=lora", "adapter.r=4"]))
    assert chosen["adapter"] == {
        "name": "lora",
        "r": 4,
        "alpha": 16.0,
        "dropout": 0.05,
        "target_modules": None,
    }


def test_an_adapter_setting_without_an_adapter_says_to_choose_one() -> None:
    from codex_ml.config import ConfigError
    from codex_ml.run.precheck import check_overrides

    with pytest.raises(ConfigError, match="no adapter is chosen") as caught:
        check_overrides("train", [("adapter.r", "4")])
    assert "adapter=<preset or registry key>" in str(caught.value) and "lora" in str(caught.value)


# --- the command line -------------------------------------------------------------------------

#: Enough training for the adapters to move the outputs (lr high, short warmup).
ADAPTER_RUN = (
    *TINY,
    "training.max_steps=12",
    "training.lr=0.02",
    "training.warmup_steps=2",
    "training.eval_every=0",
    "training.checkpoint_every=6",
    "run.sample_prompts=[]",
)


def _hf(folder: Path) -> tuple[str, ...]:
    return (
        "tokenizer=offline/hf",
        f"tokenizer.name_or_path={folder}",
        "model=offline/hf",
        f"model.path={folder}",
    )


def _train(run_dir: Path, *overrides: str) -> list[str]:
    return ["train", f"hydra.run.dir={run_dir}", *overrides]


def _generate(run_dir: Path) -> list[str]:
    prompts = [arg for prompt in PROMPTS for arg in ("--prompt", prompt)]
    return ["generate", str(run_dir), *prompts, "--temperature=0", f"--max-new-tokens={NEW_TOKENS}"]


def _folder_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


class AdapterRuns:
    """The adapter runs, and what reads them, by name."""

    RUNS = ("lora", "lora_learned", "freeze", "hf_lora")

    def __init__(self, tmp: Path, gpt2: Path) -> None:
        self.tmp, self.gpt2 = tmp, gpt2
        self.gpt2_before = _folder_hashes(gpt2)
        self.dirs = {name: tmp / name for name in self.RUNS}
        trains = {
            "lora": _train(self.dirs["lora"], *ADAPTER_RUN, "adapter=lora"),
            "lora_learned": _train(
                self.dirs["lora_learned"],
                *ADAPTER_RUN,
                "+model.positions=learned",
                "adapter=lora",
                "adapter.target_modules=[attn.qkv,mlp.fc]",
            ),
            "freeze": _train(
                self.dirs["freeze"],
                *ADAPTER_RUN,
                "adapter=freeze",
                "adapter.trainable=[blocks.1.*]",
            ),
            "hf_lora": _train(self.dirs["hf_lora"], *ADAPTER_RUN, *_hf(gpt2), "adapter=lora"),
            "bad_target": _train(
                tmp / "bad-target",
                *ADAPTER_RUN,
                "adapter=lora",
                "adapter.target_modules=[attn.qvk]",
            ),
            "bad_glob": _train(
                tmp / "bad-glob", *ADAPTER_RUN, "adapter=freeze", "adapter.trainable=[blocks.9.*]"
            ),
            "listing": ["plugins", "list", "adapter"],
        }
        self.results = run_side_by_side({k: Command(v, tmp) for k, v in trains.items()})
        for name in self.RUNS:
            assert_succeeded(self.results[name])
        self.out = {
            f"{name}{kind}": tmp / "exports" / f"{name}{kind}"
            for name in ("lora", "lora_learned", "hf_lora", "freeze")
            for kind in ("", "_adapter")
        }
        later = {
            "resume": _train(
                tmp / "resumed", f"training.resume={self.dirs['lora']}", "training.max_steps=16"
            ),
            "evaluate": ["evaluate", str(self.dirs["lora"])],
            **{f"generate_{n}": _generate(self.dirs[n]) for n in self.RUNS},
            **{
                f"export_{name}": [
                    "export",
                    str(self.dirs[name.removesuffix("_adapter")]),
                    "--out",
                    str(out),
                ]
                + (["--adapter-only"] if name.endswith("_adapter") else [])
                for name, out in self.out.items()
            },
        }
        self.results |= run_side_by_side({k: Command(v, tmp) for k, v in later.items()})

    def __getitem__(self, name: str) -> subprocess.CompletedProcess:
        return self.results[name]

    def run(self, name: str) -> Run:
        return Run(self.dirs[name])

    def exported(self, name: str) -> Path:
        assert_succeeded(self[f"export_{name}"])
        return self.out[name]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_gpt2: Path) -> AdapterRuns:
    return AdapterRuns(tmp_path_factory.mktemp("adapters"), tiny_gpt2)


@pytest.mark.parametrize("name", AdapterRuns.RUNS)
def test_summary_records_trainable_and_total_parameters_and_the_adapter(
    runs: AdapterRuns, name: str
) -> None:
    summary = runs.run(name).summary
    assert summary["status"] == "completed" and summary["steps"] == 12
    assert 0 < summary["trainable_parameters"] < summary["parameters"]
    adapter = summary["components"]["adapter"]
    key = "freeze" if name == "freeze" else "lora"
    assert (adapter["key"], adapter["kind"], adapter["source"]) == (key, "adapter", "builtin")
    assert adapter["target"].startswith("codex_ml.adapters.")


@pytest.mark.parametrize("name", AdapterRuns.RUNS)
def test_checkpoints_hold_no_base_weight(runs: AdapterRuns, name: str) -> None:
    from safetensors import safe_open

    summary = runs.run(name).summary
    for step in sorted((runs.dirs[name] / "checkpoints").glob("step-*")):
        weights = step / "model.safetensors"
        with safe_open(str(weights), framework="pt") as handle:
            names = set(handle.keys())
            count = sum(_numel(handle, n) for n in names)
        if name == "freeze":
            assert names and all(n.startswith("blocks.1.") for n in names)
        else:
            assert names and all(".lora_" in n for n in names)
        assert count == summary["trainable_parameters"]
        assert weights.stat().st_size < 4 * summary["trainable_parameters"] + 16_384
        meta = json.loads((step / "meta.json").read_text())
        assert meta["adapter"]["name"] == ("freeze" if name == "freeze" else "lora")
        state = torch.load(step / "state.pt", weights_only=True)
        held = {int(i) for i in state["optimizer"]["state"]}
        assert len(held) == len(names)  # optimizer state for the trained tensors alone


def _numel(handle: Any, name: str) -> int:
    shape = handle.get_slice(name).get_shape()
    count = 1
    for size in shape:
        count *= size
    return count


def test_the_base_model_folder_is_never_written(runs: AdapterRuns) -> None:
    assert _folder_hashes(runs.gpt2) == runs.gpt2_before


def test_a_target_that_matches_no_module_is_one_paragraph_and_exit_2(runs: AdapterRuns) -> None:
    assert_user_error(
        runs["bad_target"], "train", "adapter:", "'attn.qvk' matches no module", "attn.qkv"
    )


def test_a_trainable_glob_that_matches_nothing_is_one_paragraph_and_exit_2(
    runs: AdapterRuns,
) -> None:
    assert_user_error(runs["bad_glob"], "train", "adapter:", "'blocks.9.*' matches none")


def test_plugins_list_shows_the_adapters(runs: AdapterRuns) -> None:
    assert_succeeded(runs["listing"])
    assert "lora" in runs["listing"].stdout and "freeze" in runs["listing"].stdout


def test_an_adapter_run_resumes_from_its_adapter_checkpoint(runs: AdapterRuns) -> None:
    assert_succeeded(runs["resume"])
    summary = Run(runs.tmp / "resumed").summary
    assert summary["steps"] == 16 and summary["resumed_from"] == str(runs.dirs["lora"])
    assert summary["components"]["adapter"]["key"] == "lora"
    weights = runs.tmp / "resumed" / "checkpoints" / "step-16" / "model.safetensors"
    assert weights.stat().st_size < 4 * summary["trainable_parameters"] + 16_384


def test_evaluate_scores_base_plus_adapter_as_the_run_did(runs: AdapterRuns) -> None:
    assert_succeeded(runs["evaluate"])
    report = json.loads((runs.dirs["lora"] / "evaluation.json").read_text())
    assert report["metrics"]["ppl"] == pytest.approx(
        runs.run("lora").summary["metrics"]["ppl"], rel=1e-4
    )


def _transformers_greedy(model: Any, tokenizer: Any, prompt: str) -> str:
    inputs = tokenizer(prompt, return_tensors="pt")
    output = model.generate(**inputs, do_sample=False, max_new_tokens=NEW_TOKENS)
    return tokenizer.decode(output[0, inputs["input_ids"].size(1) :], skip_special_tokens=True)


def _expected(generated: subprocess.CompletedProcess, model: Any, tokenizer: Any) -> None:
    assert_succeeded(generated)
    expected = "".join(f"{p}{_transformers_greedy(model, tokenizer, p)}\n---\n" for p in PROMPTS)
    assert generated.stdout == expected


@pytest.mark.parametrize("name", ["lora", "lora_learned", "hf_lora", "freeze"])
def test_the_merged_export_generates_what_the_run_generates(runs: AdapterRuns, name: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = runs.exported(name)
    assert not (folder / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    _expected(runs[f"generate_{name}"], model, AutoTokenizer.from_pretrained(folder))


@pytest.mark.parametrize(
    ("name", "architecture"),
    [
        ("lora", "GPTNeoXForCausalLM"),
        ("lora_learned", "GPT2LMHeadModel"),
        ("hf_lora", "GPT2LMHeadModel"),
    ],
)
def test_adapter_only_loads_with_peft_onto_the_exported_base(
    runs: AdapterRuns, name: str, architecture: str
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = runs.exported(f"{name}_adapter")
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {
        p.name for p in folder.iterdir()
    }
    assert f"peft LoRA adapter for {architecture}" in runs[f"export_{name}_adapter"].stdout
    config = json.loads((folder / "adapter_config.json").read_text())
    base = Path(config["base_model_name_or_path"])
    assert base == (folder / "base" if name != "hf_lora" else runs.gpt2.resolve())
    assert json.loads((base / "config.json").read_text())["architectures"] == [architecture]
    from safetensors.torch import load_file

    trained = load_file(str(folder / "adapter_model.safetensors"))
    assert any(".lora_B." in n and bool(t.abs().sum() > 0) for n, t in trained.items())
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), folder).eval()
    _expected(runs[f"generate_{name}"], model, AutoTokenizer.from_pretrained(folder))


def test_adapter_only_of_a_freeze_run_is_refused(runs: AdapterRuns) -> None:
    assert_user_error(runs["export_freeze_adapter"], "export", "--adapter-only", "'freeze'")
    assert not runs.out["freeze_adapter"].exists()


# --- DDP ----------------------------------------------------------------------------------------


def test_an_adapter_run_under_torchrun_saves_only_the_adapter(tmp_path: Path) -> None:
    from safetensors import safe_open

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    run_dir = tmp_path / "ddp-lora"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "codex_ml.cli", "train", f"hydra.run.dir={run_dir}", "model=offline/minilm",
        "adapter=lora", "training.max_steps=4", "training.batch_size=4", "training.block_size=64",
        "training.eval_every=0", "training.checkpoint_every=2", "run.progress=false",
        "run.sample_prompts=[]",
    ]  # fmt: skip
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 4
    assert summary["tokens_seen"] == 4 * 2 * 4 * 64
    with safe_open(str(run_dir / "checkpoints" / "step-4" / "model.safetensors"), "pt") as handle:
        assert all(".lora_" in name for name in handle.keys())  # noqa: SIM118 (no __iter__)
