"""``codex-ml export RUN --out DIR``: a folder that ``transformers`` alone loads and generates from.

The CLI commands of this file run side by side once (``Exports``); each test
then reads one of them. The exported folders are loaded with nothing but
``transformers`` (``AutoModelForCausalLM``, ``AutoTokenizer``), and their greedy
generation is compared with ``codex-ml generate --temperature 0``'s output.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import pytest
from cli_helpers import QUICK, TINY, Command, Run, assert_succeeded, assert_user_error, train
from cli_helpers import run_concurrently as run_side_by_side

pytest_plugins = ["cli_fixtures"]

#: Prompts compared between the exported folder and ``codex-ml generate`` (ASCII and not).
PROMPTS = ("Once upon a time", "Über die Brücke, café ☕")
NEW_TOKENS = 40
#: Texts whose ids the exported byte tokenizer must give exactly as codex-ml's does.
TEXTS = (
    "hello world",
    "  two  spaces,\ttab\nnewline",
    "héllo wörld — 日本語 🎉",
    "special text stays bytes: <eos> <bos> <pad>",
    "",
)


class Exports:
    """Three tiny runs (rope, learned positions, a Hugging Face GPT-2), their exports and
    ``codex-ml generate`` outputs, by name."""

    def __init__(self, tmp: Path, rope: Run, artefact_root: Path) -> None:
        self.tmp = tmp
        self.runs = {
            "rope": rope,
            "learned": train(
                tmp / "learned",
                *TINY,
                "+model.positions=learned",
                "training.max_steps=10",
                "training.eval_every=0",
                "run.sample_prompts=[]",
            ),
            "hf": train(
                tmp / "hf", *QUICK, *_hf_overrides(artefact_root / "artifacts/models/gpt2")
            ),
        }
        self.out = {name: tmp / "exports" / name for name in self.runs}
        self.steps = sorted(
            (rope.dir / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1])
        )
        self.occupied = _folder_with(tmp / "occupied", "keep.txt", "not an export")
        self.forced = _folder_with(tmp / "forced", "old.txt", "replace me")
        commands = {
            **{f"export_{name}": _export(run, self.out[name]) for name, run in self.runs.items()},
            **{f"generate_{name}": _generate(run) for name, run in self.runs.items()},
            "export_step": _export(rope, tmp / "step", "--checkpoint", self.steps[0].name),
            "export_occupied": _export(rope, self.occupied),
            "export_forced": _export(rope, self.forced, "--force"),
            "export_best": _export(rope, tmp / "best", "--checkpoint", "best"),
            "export_no_step": _export(rope, tmp / "no-step", "--checkpoint", "step-999"),
            "export_bad_choice": _export(rope, tmp / "bad", "--checkpoint", "newest"),
        }
        self.results = run_side_by_side({k: Command(v, tmp) for k, v in commands.items()})

    def __getitem__(self, name: str) -> subprocess.CompletedProcess:
        return self.results[name]

    def exported(self, name: str) -> Path:
        assert_succeeded(self[f"export_{name}"])
        return self.out[name]


def _hf_overrides(model_dir: Path) -> tuple[str, ...]:
    return (
        "tokenizer=offline/hf",
        f"tokenizer.name_or_path={model_dir}",
        "model=offline/hf",
        f"model.path={model_dir}",
    )


def _export(run: Run, out: Path, *options: str) -> list[str]:
    return ["export", str(run.dir), "--out", str(out), *options]


def _generate(run: Run) -> list[str]:
    prompts = [arg for prompt in PROMPTS for arg in ("--prompt", prompt)]
    return ["generate", str(run.dir), *prompts, "--temperature=0", f"--max-new-tokens={NEW_TOKENS}"]


def _folder_with(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True)
    (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def exports(
    tmp_path_factory: pytest.TempPathFactory, trained_run: Run, artefact_root: Path
) -> Exports:
    return Exports(tmp_path_factory.mktemp("export"), trained_run, artefact_root)


def _transformers_greedy(folder: Path, prompt: str) -> str:
    """What ``transformers`` alone generates greedily from the folder, after the prompt."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    inputs = tokenizer(prompt, return_tensors="pt")
    output = model.generate(**inputs, do_sample=False, max_new_tokens=NEW_TOKENS)
    return tokenizer.decode(output[0, inputs["input_ids"].size(1) :], skip_special_tokens=True)


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


# --- what is written -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "model_type", "architecture"),
    [
        ("rope", "gpt_neox", "GPTNeoXForCausalLM"),
        ("learned", "gpt2", "GPT2LMHeadModel"),
        ("hf", "gpt2", "GPT2LMHeadModel"),
    ],
)
def test_each_model_is_written_as_a_standard_architecture(
    exports: Exports, name: str, model_type: str, architecture: str
) -> None:
    folder = exports.exported(name)
    config = _config(folder)
    assert (config["model_type"], config["architectures"]) == (model_type, [architecture])
    assert architecture in exports[f"export_{name}"].stdout
    files = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json"} <= files
    assert {"tokenizer.json", "tokenizer_config.json"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".py"))]  # safetensors, no code
    assert not list(folder.parent.glob(".*export-*"))  # no staging folder left beside it


def test_rope_maps_to_gpt_neox_rotating_every_channel_in_sequence(exports: Exports) -> None:
    config = _config(exports.exported("rope"))
    assert config["use_parallel_residual"] is False
    assert config["rope_parameters"]["partial_rotary_factor"] == 1.0
    assert config["hidden_act"] == "gelu"  # exact GELU, as F.gelu


def test_generation_config_stops_and_pads_with_the_run_tokenizer_ids(exports: Exports) -> None:
    from codex_ml.tokenizers.byte_level import ByteTokenizer

    generation = json.loads((exports.exported("rope") / "generation_config.json").read_text())
    byte = ByteTokenizer()
    assert (generation["eos_token_id"], generation["pad_token_id"]) == (byte.eos_id, byte.pad_id)


# --- it generates what codex-ml generates -------------------------------------------


@pytest.mark.parametrize("name", ["rope", "learned", "hf"])
def test_greedy_generation_from_the_folder_is_codex_ml_generate_text(
    exports: Exports, name: str
) -> None:
    folder = exports.exported(name)
    generated = exports[f"generate_{name}"]
    assert_succeeded(generated)
    expected = "".join(f"{p}{_transformers_greedy(folder, p)}\n---\n" for p in PROMPTS)
    assert generated.stdout == expected
    assert generated.stdout.count("\n---\n") == len(PROMPTS)


@pytest.mark.parametrize("text", TEXTS)
def test_exported_byte_tokenizer_gives_codex_ml_ids_and_text_back(
    exports: Exports, text: str
) -> None:
    from transformers import AutoTokenizer

    from codex_ml.tokenizers.byte_level import ByteTokenizer

    tokenizer = AutoTokenizer.from_pretrained(exports.exported("rope"), local_files_only=True)
    ids = ByteTokenizer().encode(text)
    assert tokenizer(text)["input_ids"] == ids
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode([*ids, 258, 256], skip_special_tokens=True) == text
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (
        256,
        257,
        258,
    )


@pytest.mark.parametrize(("add_bos", "add_eos"), [(True, False), (False, True), (True, True)])
def test_a_byte_tokenizer_adding_bos_or_eos_adds_them_in_the_export_too(
    tmp_path: Path, add_bos: bool, add_eos: bool
) -> None:
    from transformers import AutoTokenizer

    from codex_ml.export.tokenizer_files import write_tokenizer
    from codex_ml.tokenizers.byte_level import ByteTokenizer

    byte = ByteTokenizer(add_bos=add_bos, add_eos=add_eos)
    write_tokenizer(tmp_path, byte, context_length=64)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    for text in TEXTS:
        assert tokenizer(text)["input_ids"] == byte.encode(text)


def test_exported_byte_tokenizer_decodes_broken_utf8_as_codex_ml_does(exports: Exports) -> None:
    import random

    from transformers import AutoTokenizer

    from codex_ml.tokenizers.byte_level import ByteTokenizer

    tokenizer = AutoTokenizer.from_pretrained(exports.exported("rope"), local_files_only=True)
    byte, rng = ByteTokenizer(), random.Random(0)
    for _ in range(300):
        ids = [rng.randrange(256) for _ in range(rng.randrange(1, 10))]
        assert tokenizer.decode(ids) == byte.decode(ids), ids


# --- which checkpoint ------------------------------------------------------------


def test_checkpoint_step_n_exports_that_step(exports: Exports) -> None:
    from safetensors.torch import load_file

    assert len(exports.steps) >= 2, exports.steps
    assert_succeeded(exports["export_step"])
    exported_name, trained_name = (
        "gpt_neox.layers.0.mlp.dense_h_to_4h.weight",
        "blocks.0.mlp.fc.weight",
    )
    exported = load_file(exports.tmp / "step" / "model.safetensors")[exported_name]
    latest = load_file(exports.exported("rope") / "model.safetensors")[exported_name]
    earliest, newest = (
        load_file(step / "model.safetensors")[trained_name]
        for step in (exports.steps[0], exports.steps[-1])
    )
    assert exported.equal(earliest) and latest.equal(newest)
    assert not exported.equal(latest)


def test_checkpoint_best_is_refused_until_runs_keep_one(exports: Exports) -> None:
    assert_user_error(exports["export_best"], "export", "no best checkpoint in", "step-")
    assert not (exports.tmp / "best").exists()


def test_a_step_that_is_not_there_is_refused_naming_those_that_are(exports: Exports) -> None:
    assert_user_error(exports["export_no_step"], "export", "step-999", exports.steps[-1].name)


def test_a_checkpoint_choice_that_is_no_checkpoint_is_a_usage_error(exports: Exports) -> None:
    result = exports["export_bad_choice"]
    assert result.returncode == 2 and "latest, best or step-N" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_help_page_is_plain_text_and_names_the_options(tmp_path: Path) -> None:
    result = Command(["export", "--help"], tmp_path).run()
    assert_succeeded(result)
    assert "``" not in result.stdout
    for option in ("--out DIR", "--checkpoint", "--force", "-cd"):
        assert option in result.stdout


# --- the output folder -------------------------------------------------------------


def test_a_non_empty_out_is_refused_and_left_untouched(exports: Exports) -> None:
    assert_user_error(exports["export_occupied"], "export", str(exports.occupied), "--force")
    assert [p.name for p in exports.occupied.iterdir()] == ["keep.txt"]
    assert (exports.occupied / "keep.txt").read_text() == "not an export"
    assert not list(exports.tmp.glob(".occupied.*"))


def test_force_replaces_a_non_empty_out_with_the_export(exports: Exports) -> None:
    assert_succeeded(exports["export_forced"])
    files = {p.name for p in exports.forced.iterdir()}
    assert "old.txt" not in files and "model.safetensors" in files
    assert not list(exports.tmp.glob(".forced.*"))  # nor the old folder, moved aside


def test_a_failed_export_leaves_no_folder_and_out_as_it_was(tmp_path: Path) -> None:
    from codex_ml.export.folder import publish

    def failing(staging: Path) -> None:
        (staging / "config.json").write_text("{}")
        raise RuntimeError("verification failed")

    def complete(staging: Path) -> None:
        (staging / "config.json").write_text("{}")

    out = _folder_with(tmp_path / "out", "keep.txt", "mine")
    with pytest.raises(RuntimeError):
        publish(out, failing, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    publish(out, complete, force=True)
    assert [p.name for p in out.iterdir()] == ["config.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# --- the mapping, every setting ----------------------------------------------------------


SETTINGS = list(itertools.product(["rope", "learned"], [False, True], [True, False]))


@pytest.mark.parametrize(("positions", "bias", "tie"), SETTINGS)
def test_every_decoder_setting_maps_to_the_same_logits(
    tmp_path: Path, positions: str, bias: bool, tie: bool
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from codex_ml.export.model_files import write_model
    from codex_ml.models.decoder_only import build_decoder_only
    from codex_ml.tokenizers.byte_level import ByteTokenizer

    model = build_decoder_only(
        n_layer=2, n_head=4, n_embd=32, block_size=32, positions=positions, bias=bias,
        tie_embeddings=tie, seed=0,
    )  # fmt: skip
    with torch.no_grad():  # biases and norms away from their initial 0 and 1
        for name, parameter in model.named_parameters():
            if name.endswith("bias") or ".ln" in name or name.startswith("ln"):
                parameter.add_(torch.randn_like(parameter) * 0.3)
    write_model(tmp_path, model, ByteTokenizer())
    exported = AutoModelForCausalLM.from_pretrained(tmp_path, local_files_only=True)
    ids = torch.randint(0, 259, (2, 32), generator=torch.Generator().manual_seed(0))
    assert torch.equal(exported(ids).logits, model(ids).logits)


def test_a_model_export_cannot_map_is_refused_naming_it() -> None:
    from codex_ml.export import ExportError
    from codex_ml.export.decoder_only import check_representable
    from codex_ml.models.decoder_only import DecoderOnlyConfig, DecoderOnlyLM

    class Changed(DecoderOnlyLM):
        pass

    with pytest.raises(ExportError, match="Changed"):
        check_representable(Changed(DecoderOnlyConfig(n_layer=1, n_embd=16, n_head=2)))
