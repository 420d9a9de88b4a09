"""Training the ``bpe`` tokenizer (issue 20): codex-ml against ``tokenizers`` called directly.

    python -m benchmarks.bpe_training          # 20 MB, vocab 8,192, 5 runs each (~6 min)
    python -m benchmarks.bpe_training --quick  # 1 MB, vocab 1,000, 1 run each: checks it runs

The corpus is generated English-like text (``benchmarks.data_store.make_corpus``)
read as one record per line; the training split is the run's (``run.eval_fraction
0.1``, seed 0). Each measurement is a fresh process, the variants interleaved,
and the figure is the median wall time of the training itself (imports and
interpreter start excluded: both sides pay them alike), with the median CPU
time beside it (``tokenizers`` trains on every core; on a shared machine the
wall clock swings more than the CPU time):

- **in memory**: the same list of training texts given to codex-ml's factory
  (``get_tokenizer("bpe", corpus=...)``, a cache miss: training, saving as
  Hugging Face files, publishing into the cache and loading back) and to
  ``tokenizers.ByteLevelBPETokenizer().train_from_iterator`` with the same
  vocabulary size, minimum frequency and special token;
- **from the file**: what ``codex-ml prepare`` does before building the token
  store (the run's training split streamed from ``data=offline/lines``, then
  the same training), against reading the file's lines, splitting them by the
  same rule and training ``ByteLevelBPETokenizer`` on them.

The goal is a ratio of at most 1.1. Results go to ``benchmarks/results/bpe_training.json``
(not in ``--quick``).
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
RESULTS = REPO / "benchmarks" / "results" / "bpe_training.json"
VARIANTS = (
    "codex-ml in memory",
    "tokenizers in memory",
    "codex-ml from the file",
    "tokenizers from the file",
)
GOAL = 1.1


def training_texts(corpus: Path) -> list[str]:
    """The corpus's training split, as a run holds it out (eval_fraction 0.1, seed 0)."""
    from codex_ml.data.split import assign

    lines = corpus.read_text(encoding="utf-8").splitlines()
    return [text for held_out, text in assign(lines, eval_fraction=0.1, seed=0) if not held_out]


def child(variant: str, corpus: Path, vocab_size: int) -> dict[str, float]:
    """One measurement, in this (fresh) process: seconds of wall and CPU time of the training."""
    import tokenizers  # noqa: F401  (imported before the clock starts, on both sides)
    import transformers  # noqa: F401

    from codex_ml.tokenizers.bpe import bpe_tokenizer

    texts = training_texts(corpus) if variant.endswith("in memory") else None
    settings = {"vocab_size": vocab_size, "min_frequency": 2}
    wall, cpu = time.perf_counter(), time.process_time()
    if variant == "codex-ml in memory":
        tokenizer = bpe_tokenizer(corpus=texts, **settings)
        size = tokenizer.vocab_size
    elif variant == "codex-ml from the file":
        from codex_ml.config import ComponentSpec
        from codex_ml.registry import get_registry
        from codex_ml.run.prepare import DataSource, training_corpus

        spec = ComponentSpec("data_loader", "lines", {"path": str(corpus)}, "data")
        source = DataSource(loader=spec, factory=get_registry("data_loader").get("lines"))
        size = bpe_tokenizer(corpus=training_corpus(source), **settings).vocab_size
    else:
        from tokenizers import ByteLevelBPETokenizer

        if texts is None:
            texts = training_texts(corpus)
        direct = ByteLevelBPETokenizer()
        direct.train_from_iterator(
            texts, special_tokens=["<|endoftext|>"], show_progress=False, **settings
        )
        size = direct.get_vocab_size()
    return {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "vocab_size": size,
    }


def measure(variant: str, corpus: Path, vocab_size: int, work: Path) -> dict[str, float]:
    """:func:`child` in a fresh process, with a cache folder of its own (a cache miss)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_ML_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]),
        CODEX_ML_CACHE_DIR=tempfile.mkdtemp(dir=work, prefix="cache-"),
        HF_HUB_OFFLINE="1",
    )
    argv = [sys.executable, "-m", "benchmarks.bpe_training", "--child", variant, str(corpus)]
    done = subprocess.run(
        [*argv, f"--vocab-size={vocab_size}"], env=env, capture_output=True, text=True, cwd=work
    )
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(size: int, vocab_size: int, repeats: int) -> dict[str, Any]:
    """Every variant ``repeats`` times, interleaved; raw runs, medians and the two ratios."""
    from benchmarks.data_store import make_corpus
    from benchmarks.machine import describe

    with tempfile.TemporaryDirectory(prefix="bpe-bench-") as tmp:
        work = Path(tmp)
        corpus = make_corpus(work / "corpus.txt", size)
        raw: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
        for _ in range(repeats):
            for variant in VARIANTS:
                raw[variant].append(measure(variant, corpus, vocab_size, work))
    facts = {"machine": describe(), "corpus_bytes": size, "vocab_size": vocab_size}
    return {**facts, "repeats": repeats, **summary(raw), "raw": raw}


def summary(raw: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Median and best wall time, median CPU time, and codex-ml's ratio to ``tokenizers``."""
    figures = {
        "median_wall_s": {v: statistics.median(r["wall"] for r in runs) for v, runs in raw.items()},
        "best_wall_s": {v: min(r["wall"] for r in runs) for v, runs in raw.items()},
        "median_cpu_s": {v: statistics.median(r["cpu"] for r in runs) for v, runs in raw.items()},
    }
    wheres = ("in memory", "from the file")
    ratios = {
        name: {w: times[f"codex-ml {w}"] / times[f"tokenizers {w}"] for w in wheres}
        for name, times in figures.items()
    }
    return {**figures, "ratios": ratios}


def report(results: dict[str, Any]) -> str:
    """The results as the Markdown table docs/benchmarks.md keeps."""
    lines = [
        f"{results['corpus_bytes'] / 1e6:g} MB corpus, vocab {results['vocab_size']:,}, "
        f"{results['repeats']} fresh processes each, interleaved; codex-ml / `tokenizers`:",
        "",
        "| text | median wall | best wall | median CPU | goal <= 1.1 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for where in ("in memory", "from the file"):
        ours, theirs = f"codex-ml {where}", f"tokenizers {where}"
        cells = [
            f"{results[name][ours]:.2f} s / {results[name][theirs]:.2f} s = "
            f"{results['ratios'][name][where]:.3f}"
            for name in ("median_wall_s", "best_wall_s", "median_cpu_s")
        ]
        mark = "met" if results["ratios"]["median_cpu_s"][where] <= GOAL else "NOT met"
        lines.append(f"| {where} | {' | '.join(cells)} | {mark} (CPU) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bpe_training")
    parser.add_argument("--quick", action="store_true", help="1 MB, one run each; writes nothing")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "CORPUS"), help=argparse.SUPPRESS)
    parser.add_argument("--vocab-size", type=int, default=None)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.vocab_size)))
        return 0
    size, vocab, repeats = (1_000_000, 1000, 1) if args.quick else (20_000_000, 8192, 5)
    results = run(size, args.vocab_size or vocab, repeats)
    print(report(results))
    if not args.quick:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
