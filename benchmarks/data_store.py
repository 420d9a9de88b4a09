"""The token store (issue 10): preparation speed, training memory, start-up and throughput.

    python -m benchmarks.data_store            # 10 MB and 100 MB; prints a Markdown report
    python -m benchmarks.data_store --full     # and 1 GB (about 20 more minutes on 2 cores)
    python -m benchmarks.data_store --quick    # 1 MB, small BPE: checks that it all still runs

Corpora are generated, English-like text (Zipf-distributed pseudo-words,
punctuation, one paragraph per line). Two tokenizers: codex-ml's byte
tokenizer, and a 50,257-token byte-level BPE trained here with ``tokenizers``
(GPT-2's vocabulary size). Every figure is a ratio to a baseline measured in
the same run, each variant in a fresh process:

- preparation: ``codex-ml prepare`` (the store's own build time) against the
  raw limit (the same lines tokenised in the same batches, writing nothing,
  same threads) and a nanoGPT-style preparation (``datasets.map(batched=True,
  num_proc=2)`` into a ``uint16`` memmap);
- peak RSS of ``codex-ml train`` (default model, 3 steps) on a warm store at
  each size, and on the bundled tiny corpus;
- start to first step: wall time of a one-step ``codex-ml train`` on a warm
  100 MB store against the bundled tiny corpus (medians of 3, interleaved);
- training tokens/s at the default size (the bundled corpus): the trainer fed
  the store's memory map against the same text records in memory.

Results go to ``benchmarks/results/data_store.json`` (not in ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "data_store.json"
MB = 1_000_000


# --- corpora and tokenizers ----------------------------------------------------------------


def make_corpus(path: Path, size: int, seed: int = 0) -> Path:
    """``size`` bytes of English-like text, one paragraph (~120 words) per line."""
    import numpy as np

    rng = np.random.default_rng(seed)
    syllables = [a + b for a in "bcdfghklmnprstvwy" for b in ("a", "e", "i", "o", "u", "ou", "ea")]
    common = "the of and to in a is that for it as was with be by on not he this are".split()  # noqa: SIM905
    lengths = rng.integers(1, 4, size=40_000)
    words = common + [
        "".join(rng.choice(syllables, size=n)) + ("n" if rng.random() < 0.3 else "")
        for n in lengths
    ]
    words = list(dict.fromkeys(words))
    ranks = np.arange(1, len(words) + 1)
    p = 1.0 / ranks**1.07
    p /= p.sum()
    vocab = np.array(words, dtype=object)
    with path.open("w", encoding="utf-8") as handle:
        written = 0
        while written < size:
            ids = rng.choice(len(words), size=120_000, p=p)
            chunk = vocab[ids]
            lines = []
            for start in range(0, len(chunk), 120):
                sentence = " ".join(chunk[start : start + 120])
                lines.append(sentence[:1].upper() + sentence[1:].replace(" the ", ", the ") + ".")
            text = "\n".join(lines) + "\n"
            handle.write(text)
            written += len(text)
    with path.open("r+b") as handle:  # exactly `size` bytes, ending at a line break
        handle.truncate(size)
        handle.seek(size - 1)
        handle.write(b"\n")
    return path


def train_bpe(corpus: Path, folder: Path, vocab_size: int) -> Path:
    """A byte-level BPE of ``vocab_size`` tokens, saved where ``tokenizer=offline/hf`` loads it."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train(
        [str(corpus)], vocab_size=vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>")
    fast.save_pretrained(str(folder))
    return folder


# --- measurements ----------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_ML_")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=str(REPO / "src"))
    env.update(extra)
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str, str]:
    """Wall seconds, peak RSS (MB), stdout and stderr of one child process."""
    started = time.perf_counter()
    child = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = child.communicate()
    wall = time.perf_counter() - started
    # communicate() reaped the child; its peak RSS is in the children's rusage high-water mark,
    # so each measured command runs through a tiny wrapper that reports its own.
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({child.returncode}):\n{err[-3000:]}")
    return wall, 0.0, out, err


_RSS_WRAPPER = (
    "import resource, runpy, sys; sys.argv = sys.argv[1:]; code = 0\n"
    "try:\n    runpy.run_module(sys.argv[0], run_name='__main__')\n"
    "except SystemExit as e:\n    code = e.code or 0\n"
    "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def codex_ml(args: list[str], cache: Path, cwd: Path) -> tuple[float, float, str]:
    """``codex-ml ARGS`` in a fresh process: wall seconds, peak RSS in MB, stdout."""
    argv = [sys.executable, "-c", _RSS_WRAPPER, "codex_ml.cli", *args]
    wall, _, out, err = _run(argv, _env(CODEX_ML_CACHE_DIR=str(cache)), cwd)
    peak = [line for line in err.splitlines() if line.startswith("PEAK_RSS_KB")]
    return wall, int(peak[-1].split()[1]) / 1024 if peak else float("nan"), out


def tokenizer_args(tokenizer_dir: Path | None) -> list[str]:
    if tokenizer_dir is None:
        return []
    return ["tokenizer=offline/hf", f"tokenizer.name_or_path={tokenizer_dir}"]


def prepare_codex_ml(corpus: Path, tokenizer_dir: Path | None, cache: Path, cwd: Path) -> dict:
    args = ["prepare", "--json", "data=offline/lines", f"data.path={corpus}"]
    wall, rss, out = codex_ml([*args, *tokenizer_args(tokenizer_dir)], cache, cwd)
    facts = json.loads(out)
    tokens = facts["tokens"]["train"] + facts["tokens"]["eval"]
    return {"seconds": facts["seconds"], "wall": wall, "tokens": tokens, "rss_mb": rss}


def baseline(mode: str, corpus: Path, tokenizer_dir: Path | None, cwd: Path) -> dict:
    argv = [sys.executable, str(REPO / "benchmarks" / "probes" / "prepare_baselines.py"), mode]
    argv += [str(corpus)] + ([f"--tokenizer-dir={tokenizer_dir}"] if tokenizer_dir else [])
    _, _, out, _ = _run(argv, _env(), cwd)
    return json.loads(out.strip().splitlines()[-1])


TRAIN = ["run.progress=false", "run.sample_prompts=[]", "training.eval_every=0"]


def train_rss(data: list[str], cache: Path, cwd: Path, steps: int = 3) -> dict:
    run_dir = Path(tempfile.mkdtemp(dir=cwd, prefix="run-"))
    args = ["train", f"hydra.run.dir={run_dir}", f"training.max_steps={steps}", *TRAIN, *data]
    wall, rss, _ = codex_ml(args, cache, cwd)
    return {"wall": wall, "rss_mb": rss}


def training_throughput(steps: int, repeats: int) -> dict:
    """Tokens/s of the functional trainer: store memory map vs text records in memory.

    One torch thread each, and tokens per CPU second beside tokens per second: on a
    shared machine the wall clock swings several-fold between runs, CPU time much less.
    """
    code = (
        "import json, sys, tempfile, os\n"
        "from codex_ml.run.assemble import build, data_source, plan, resolve\n"
        "from codex_ml.run.compose import compose_config\n"
        "from codex_ml.run.prepare import prepare\n"
        "from codex_ml.world import Process\n"
        "from codex_ml.data.store import TokenSplit\n"
        "from codex_ml.run.assemble import split_records\n"
        "from codex_ml.registry import get_data_loader, get_model, get_trainer\n"
        "p = plan(resolve(compose_config('train', [])), groups=('tokenizer', 'data'))\n"
        "tok = build(p, 'tokenizer')\n"
        "store = prepare(data_source(p), tok, process=Process(), progress=False).store\n"
        "train, _ = split_records(get_data_loader('offline:tiny-corpus'), eval_fraction=0.1,"
        " seed=0)\n"
        "data = TokenSplit(store, 'train') if sys.argv[1] == 'store' else train\n"
        "model = get_model('decoder_only', vocab_size=tok.vocab_size, n_layer=4, n_head=4,"
        " n_embd=128, block_size=256, seed=0)\n"
        f"trainer = get_trainer('offline:functional', max_steps={steps}, batch_size=16,"
        f" block_size=128, log_every={steps // 3}, device='cpu', warmup_steps=5,"
        " num_threads=1)\n"
        "import time; cpu = time.process_time()\n"
        "r = trainer(model, tok, data)\n"
        "cpu = time.process_time() - cpu\n"
        "rates = [h['tokens_per_s'] for h in r.history if h.get('event') == 'log'][1:]\n"
        "print(json.dumps({'tokens_per_s': sum(rates) / len(rates),"
        " 'tokens_per_cpu_s': r.tokens_seen / cpu}))\n"
    )
    runs: dict[str, list[dict[str, float]]] = {"store": [], "memory": []}
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(repeats):
            for variant in ("memory", "store"):
                _, _, out, _ = _run(
                    [sys.executable, "-c", code, variant], _env(CODEX_ML_CACHE_DIR=cache), REPO
                )
                runs[variant].append(json.loads(out.strip().splitlines()[-1]))
    return {
        variant: {
            "median": statistics.median(r["tokens_per_s"] for r in rows),
            "median_per_cpu_s": statistics.median(r["tokens_per_cpu_s"] for r in rows),
            "runs": rows,
        }
        for variant, rows in runs.items()
    }


# --- the run -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="1 MB, small BPE, one repeat")
    mode.add_argument("--full", action="store_true", help="also 1 GB")
    parser.add_argument("--workdir", type=Path, help="keep corpora here between runs")
    parser.add_argument(
        "--only-throughput", action="store_true", help="rerun the tokens/s part into the results"
    )
    args = parser.parse_args(argv)
    if args.only_throughput:
        results = json.loads(RESULTS.read_text())
        results["tokens_per_s"] = training_throughput(30, 5)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(report(results))
        return 0

    sizes = [1 * MB] if args.quick else [10 * MB, 100 * MB] + ([1000 * MB] if args.full else [])
    vocab = 2_000 if args.quick else 50_257
    work = args.workdir or Path(tempfile.mkdtemp(prefix="codex-ml-bench-data-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"sizes_mb": [s // MB for s in sizes], "bpe_vocab": vocab}
    corpora = {}
    for size in sizes:
        path = work / f"corpus-{size // MB}mb.txt"
        if not path.exists() or path.stat().st_size != size:
            make_corpus(path, size)
        corpora[size] = path
    bpe_dir = work / f"bpe-{vocab}"
    if not (bpe_dir / "tokenizer.json").exists():
        started = time.perf_counter()
        train_bpe(corpora[sizes[0]], bpe_dir, vocab)
        results["bpe_train_seconds"] = time.perf_counter() - started
    tokenizers = {"bytes": None, f"bpe-{vocab}": bpe_dir}

    prep: dict[str, Any] = {}
    for size, corpus in corpora.items():
        for name, tok_dir in tokenizers.items():
            cache = Path(tempfile.mkdtemp(dir=work, prefix="cache-"))
            row = {
                "codex_ml": prepare_codex_ml(corpus, tok_dir, cache, work),
                "raw": baseline("raw", corpus, tok_dir, work),
                "nanogpt": baseline("nanogpt", corpus, tok_dir, work),
            }
            if name != "bytes":
                subprocess.run(["rm", "-rf", str(cache)], check=False)
            else:
                row["cache"] = str(cache)  # the warm byte store, for the training runs
            prep[f"{size // MB}MB/{name}"] = row
            print(f"prepared {size // MB} MB with {name}: {_prep_line(row, size)}", flush=True)
    results["prepare"] = prep

    rss: dict[str, Any] = {}
    cache0 = Path(prep[f"{sizes[0] // MB}MB/bytes"]["cache"])
    rss["tiny corpus"] = train_rss([], cache0, work)
    for size, corpus in corpora.items():
        cache = Path(prep[f"{size // MB}MB/bytes"]["cache"])
        data = ["data=offline/lines", f"data.path={corpus}"]
        rss[f"{size // MB} MB"] = train_rss(data, cache, work)
        print(f"train on {size // MB} MB: {rss[f'{size // MB} MB']}", flush=True)
    results["train_rss"] = rss

    largest = sizes[-1] if args.quick else 100 * MB
    warm = Path(prep[f"{largest // MB}MB/bytes"]["cache"])
    first: dict[str, list[float]] = {"tiny corpus": [], f"{largest // MB} MB store": []}
    one_step = ["training.eval_max_batches=1", "run.eval_max_tokens=64", "metrics=offline/ppl"]
    for _ in range(1 if args.quick else 3):
        first["tiny corpus"].append(train_rss(one_step, cache0, work, steps=1)["wall"])
        data = ["data=offline/lines", f"data.path={corpora[largest]}", *one_step]
        first[f"{largest // MB} MB store"].append(train_rss(data, warm, work, steps=1)["wall"])
    results["first_step"] = {
        k: {"median": statistics.median(v), "runs": v} for k, v in first.items()
    }

    results["tokens_per_s"] = training_throughput(6 if args.quick else 30, 1 if args.quick else 3)
    print(report(results))
    if not args.quick:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _prep_line(row: dict, size: int) -> str:
    c, r, n = row["codex_ml"], row["raw"], row["nanogpt"]
    return (
        f"codex-ml {size / MB / c['seconds']:.1f} MB/s, raw {size / MB / r['seconds']:.1f} MB/s, "
        f"nanoGPT-style {size / MB / n['seconds']:.1f} MB/s"
    )


def report(results: dict[str, Any]) -> str:
    """The Markdown tables of docs/benchmarks.md's token-store section."""
    lines = [
        "| corpus / tokenizer | codex-ml prepare | raw limit | nanoGPT-style | "
        "vs raw (goal >= 0.8x) | vs nanoGPT (goal > 1x) | tokens |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, row in results["prepare"].items():
        size = int(key.split("MB")[0]) * MB
        c, r, n = row["codex_ml"], row["raw"], row["nanogpt"]
        lines.append(
            f"| {key} | {size / MB / c['seconds']:.1f} MB/s ({c['seconds']:.1f} s) | "
            f"{size / MB / r['seconds']:.1f} MB/s | {size / MB / n['seconds']:.1f} MB/s | "
            f"{r['seconds'] / c['seconds']:.2f}x | {n['seconds'] / c['seconds']:.2f}x | "
            f"{c['tokens']:,} |"
        )
    lines += [
        "",
        "| `codex-ml train` (default model, 3 steps) | peak RSS | wall |",
        "| --- | --- | --- |",
    ]
    for key, row in results["train_rss"].items():
        lines.append(f"| {key} | {row['rss_mb']:.0f} MB | {row['wall']:.1f} s |")
    lines += ["", "| one-step `codex-ml train` (median) | wall |", "| --- | --- |"]
    for key, row in results["first_step"].items():
        lines.append(f"| {key} | {row['median']:.2f} s |")
    tps = results["tokens_per_s"]
    ratio = tps["store"]["median"] / tps["memory"]["median"]
    cpu = {k: v.get("median_per_cpu_s", float("nan")) for k, v in tps.items()}
    cpu_ratio = cpu["store"] / cpu["memory"]
    lines += [
        "",
        "| training, bundled corpus, default model, 1 thread | tokens/s | tokens per CPU s |",
        "| --- | --- | --- |",
        f"| text records in memory (before) | {tps['memory']['median']:,.0f} | "
        f"{cpu['memory']:,.0f} |",
        f"| token store memory map | {tps['store']['median']:,.0f} ({ratio:.3f}x) | "
        f"{cpu['store']:,.0f} ({cpu_ratio:.3f}x; goal >= 0.98x) |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
