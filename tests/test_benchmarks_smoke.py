"""The benchmarks still run: ``python -m benchmarks.run --quick`` and its building blocks.

The quick mode measures toy sizes, so these tests check that every section
runs, checks what it claims (plugin modules imported, no torch at listing
time, an installed distribution seen at once) and writes a complete report;
never the numbers themselves. The training section and the GPU script (on the
CPU) take longer and are marked slow.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # ``benchmarks`` is a top-level folder, not installed
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import fake_dists  # noqa: E402
from benchmarks.report import END, START, Goal, Section, render, splice  # noqa: E402


def run_benchmarks(tmp_path: Path, *args: str) -> tuple[str, dict]:
    """Run ``python -m benchmarks.run`` from the repository root; return the page and raw JSON."""
    page, raw = tmp_path / "page.md", tmp_path / "raw.json"
    page.write_text("# Benchmarks\n\nHand-written prose stays.\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *args, "--output", str(page), "--raw", str(raw)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return page.read_text(encoding="utf-8"), json.loads(raw.read_text(encoding="utf-8"))


def test_synthetic_distributions_are_real_installed_distributions(tmp_path: Path) -> None:
    site = fake_dists.make_site(tmp_path / "site", 3)
    dists = {d.metadata["Name"]: d for d in importlib.metadata.distributions(path=[str(site)])}
    assert sorted(dists) == ["bench-plugin-00000", "bench-plugin-00001", "bench-plugin-00002"]
    groups = {ep.group: ep for ep in dists["bench-plugin-00001"].entry_points}
    assert set(groups) == {
        "codex_ml.metrics",
        "codex_ml.models",
        fake_dists.PLUGGY_GROUP,
        *fake_dists.BASELINE_GROUPS.values(),
    }
    assert groups["codex_ml.metrics"].name == "bench-metric-00001"
    assert groups["codex_ml.metrics"].value == "bench_plugin_00001:build_metric"
    # Their modules import from the folder, already byte-compiled.
    sys.path.insert(0, str(site))
    try:
        factory = groups["codex_ml.metrics"].load()
        assert factory(k=1) == ("metric", 1, {"k": 1})
        hooks = groups[fake_dists.PLUGGY_GROUP].load()
        assert hooks.bench_register_models() == {
            "bench-model-00001": sys.modules["bench_plugin_00001"].build_model
        }
    finally:
        sys.path.remove(str(site))
        for name in [m for m in sys.modules if m.startswith(fake_dists.MODULE_PREFIX)]:
            del sys.modules[name]
    assert list((site / "__pycache__").glob("bench_plugin_00002.*.pyc"))


def test_report_rewrites_only_its_generated_part(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# Title\n\nProse before.\n", encoding="utf-8")
    first = Section("1. A section", body=["| a |\n|---|\n| 1 |"])
    first.goals.append(Goal("a ratio", 0.5, 1.0, "<="))
    splice(page, render("header one", [first]))
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nProse before.\n")
    assert "| a ratio | 0.5x | <= 1x | met |" in text
    page.write_text(text + "\nProse after.\n", encoding="utf-8")
    second = Section("1. A section")
    second.goals.append(Goal("a ratio", 2.0, 1.0, "<="))
    splice(page, render("header two", [second]))
    text = page.read_text(encoding="utf-8")
    assert text.count(START) == text.count(END) == 1
    assert "header one" not in text and "header two" in text
    assert "| a ratio | 2x | <= 1x | **missed** |" in text
    assert text.startswith("# Title\n\nProse before.\n") and text.endswith("Prose after.\n")


def test_quick_registry_benchmarks_run_and_check_what_they_claim(tmp_path: Path) -> None:
    page, raw = run_benchmarks(tmp_path, "--quick", "--only", "cold,discovery,hot")
    assert page.startswith("# Benchmarks\n\nHand-written prose stays.\n")
    for title in ("1. Cold start", "2. Discovery at scale", "3. Hot lookup"):
        assert f"### {title}" in page
    assert "Quick smoke run" in page and "| pluggy |" in page

    sections = raw["sections"]
    assert sections["1. Cold start"]["heavy_imports"] == {"listing": [], "cli": []}
    runs = {s["name"]: s for s in sections["2. Discovery at scale"]["sizes"]["20"]}
    listing = runs["codex-ml: list all six registries (warm index) [20]"]["details"]
    assert all(d["plugin_modules"] == 0 and d["from_index"] for d in listing)
    first_get = runs["codex-ml: first `get` of one key [20]"]["details"]
    assert all(d["plugin_modules"] == 1 for d in first_get)
    eager = runs["pluggy: load_setuptools_entrypoints + hooks [20]"]["details"]
    assert all(d["plugin_modules"] == 20 for d in eager)
    seen = [row[1] for row in sections["2. Discovery at scale"]["freshness"]]
    assert seen == ["no", "no", "yes", "yes", "no"]
    lookups = sections["3. Hot lookup"]["ns_per_call"]
    assert all(v > 0 for values in lookups.values() for v in values)
    names = {goal["name"] for goal in raw["goals"]}
    assert any(name.startswith("hot lookup: metric_registry.get") for name in names)
    assert any(name.startswith("cold start:") for name in names)


@pytest.mark.slow
def test_quick_training_benchmark_runs_every_variant(tmp_path: Path) -> None:
    page, raw = run_benchmarks(tmp_path, "--quick", "--only", "training")
    assert "### 4. Training throughput" in page
    assert "Per-step overhead of each loop" in page
    samples = {s["name"]: s for s in raw["sections"]["4. Training throughput"]["samples"]}
    loops = ["codex-ml offline:functional", "hand-written PyTorch loop", "transformers.Trainer"]
    scaling = [
        "torchrun, 1 process x 1 thread",
        "torchrun, 2 processes x 1 thread",
        "no torchrun, 1 process x 2 threads",
    ]
    assert set(samples) == {*loops, *(f"{loop} (tiny model)" for loop in loops), *scaling}
    (two,) = samples["torchrun, 2 processes x 1 thread"]["details"]
    assert two["world_size"] == 2 and two["tokens"] == 2 * 4 * 4 * 32  # both ranks counted
    for loop in loops:
        (run,) = samples[loop]["details"]
        assert run["tokens_per_s"] > 0 and run["peak_rss_mb"] > run["rss_before_mb"] > 0
        assert run["threads"] == 1
        assert run["tokens"] == 4 * 4 * 32  # steps x batch x block, as asked
        (tiny,) = samples[f"{loop} (tiny model)"]["details"]
        assert tiny["tokens"] == 20 * 2 * 16


@pytest.mark.slow
def test_gpu_script_runs_end_to_end_on_a_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    tiny = "--n-layer 1 --n-head 2 --n-embd 32 --block-size 32 --batch-size 2 --steps 3"
    tiny += " --warmup-steps 2 --lr-warmup 2 --data-tokens 20000 --device cpu"
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu_train.py", *tiny.split(), "--output", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert set(summary["results"]) == {
        "codex-ml offline:functional",
        "codex-ml offline:functional, compile=true",
        "hand-written loop",
        "hand-written loop, torch.compile",
    }
    assert summary["codex_compiled_vs_hand_compiled"] > 0
    for result in summary["results"].values():
        assert result["tokens_per_s"] > 0
        assert result["flops_per_token"] > 6 * result["parameters"] * 0.9


@pytest.mark.slow
def test_quick_compile_benchmark_measures_the_compiled_trainer_against_its_baselines(
    tmp_path: Path,
) -> None:
    page, raw = run_benchmarks(tmp_path, "--quick", "--only", "compile")
    assert "### 6. Compiled training on the CPU (issue 12)" in page
    samples = raw["sections"]["6. Compiled training on the CPU (issue 12)"]["samples"]
    compiled = {s["name"]: s["details"][0]["compiled"] for s in samples}
    assert compiled == {
        "codex-ml offline:functional (eager)": False,
        "codex-ml offline:functional, compile=true": True,
        "hand-written loop, torch.compile": True,
        "hand-written loop (eager)": False,
    }
    assert any(g["name"].startswith("compiled training:") for g in raw["goals"])


@pytest.mark.slow
def test_quick_activation_checkpointing_benchmark_compares_both_variants(tmp_path: Path) -> None:
    from benchmarks import activation_checkpointing as bench

    section = bench.run(tmp_path, shape=bench.QUICK_SHAPE, repeats=1)
    modes = [s["details"][0]["mode"] for s in section.raw["samples"]]
    assert modes == ["off", "on"]
    assert "the losses of every step are identical" in bench.markdown(section)


def test_quick_lora_benchmark_trains_the_same_adapter_both_ways(tmp_path: Path) -> None:
    from benchmarks import lora

    model, shape = lora.sizes(quick=True)
    section = lora.run(tmp_path, model=model, shape=shape, repeats=1)
    runs = {s["name"]: s["details"][0] for s in section.raw["samples"]}
    assert set(runs) == set(lora.LABELS.values())
    ours, theirs = runs[lora.LABELS["functional"]], runs[lora.LABELS["hf"]]
    # The same base and the same LoRA: as many parameters, as many of them trained.
    assert ours["parameters"] == theirs["parameters"]
    assert 0 < ours["trainable_parameters"] == theirs["trainable_parameters"] < ours["parameters"]
    for run in runs.values():
        assert run["tokens"] == shape["steps"] * shape["batch-size"] * shape["block-size"]
        assert run["tokens_per_s"] > 0 and run["peak_rss_mb"] >= run["rss_before_mb"] > 0
    assert {goal.name.split(" (")[1] for goal in section.goals} == {"tokens/s)", "peak RSS)"}


def test_quick_bpe_benchmark_trains_both_ways_to_the_same_size(tmp_path: Path) -> None:
    from benchmarks.bpe_training import VARIANTS, report, run

    results = run(size=200_000, vocab_size=400, repeats=1)
    assert set(results["raw"]) == set(VARIANTS)
    assert {r[0]["vocab_size"] for r in results["raw"].values()} == {400}
    assert set(results["ratios"]["median_cpu_s"]) == {"in memory", "from the file"}
    assert "| in memory |" in report(results)


@pytest.mark.slow
def test_quick_sft_benchmark_counts_answer_tokens_of_both_variants(tmp_path: Path) -> None:
    from benchmarks import sft as bench

    model, shape, pairs = bench.sizes(quick=True)
    section = bench.run(tmp_path, model=model, shape=shape, pairs=pairs, repeats=1)
    variants = [s["details"][0]["variant"] for s in section.raw["samples"]]
    assert variants == ["functional", "trl"]
    for sample in section.raw["samples"]:
        details = sample["details"][0]
        assert 0 < details["answer_tokens"] < details["tokens"]  # completions only
    assert section.goals[0].name.startswith("instruction data:")
