"""Section 4, training throughput: ``offline:functional`` against two baselines.

Every run is a fresh process (``benchmarks/probes/train.py``), so each
variant's peak resident memory is its own; the variants are interleaved.
Same model, data, batch, sequence length, optimiser, schedule, clipping and
pinned thread count for all. Then the functional trainer under ``torchrun``
with 1 and 2 processes (one thread each), next to one process with two
threads, to show how the machine's two cores are best used.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.measure import Sample, child_env, probe, round_robin, timed_probe
from benchmarks.report import Goal, Section, table

LABELS = {
    "functional": "codex-ml offline:functional",
    "hand": "hand-written PyTorch loop",
    "hf": "transformers.Trainer",
}


def _shape_args(shape: Mapping[str, int]) -> list[str]:
    return [arg for name, value in shape.items() for arg in (f"--{name}", str(value))]


def _torchrun(nproc: int, shape: Mapping[str, int]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        *probe("train", "functional", *_shape_args({**shape, "threads": 1}))[1:],
    ]


def _rows(samples: Mapping[str, Sample], baseline: str) -> list[list[Any]]:
    base = samples[baseline].median_of("tokens_per_s")
    cpu_base = samples[baseline].median_of("tokens_per_cpu_s")
    rows = []
    for name, sample in samples.items():
        tps = sample.median_of("tokens_per_s")
        rows.append(
            [
                name,
                f"{tps:,.0f}",
                f"{min(d['tokens_per_s'] for d in sample.details):,.0f} - "
                f"{max(d['tokens_per_s'] for d in sample.details):,.0f}",
                f"{sample.median_of('end_to_end_tokens_per_s'):,.0f}",
                f"{tps / base:.3f}x",
                f"{sample.median_of('tokens_per_cpu_s'):,.0f}",
                f"{sample.median_of('tokens_per_cpu_s') / cpu_base:.3f}x",
                f"{sample.median_of('peak_rss_mb'):.0f}",
                f"{sample.median_of('rss_before_mb'):.0f}",
                f"{sample.median:.1f}",
            ]
        )
    return rows


def _header(versus: str) -> list[str]:
    return [
        "variant",
        "tokens/s (steps 2..N, median)",
        "range",
        "tokens/s end to end",
        f"vs {versus}",
        "tokens per CPU-s",
        f"vs {versus} (CPU)",
        "peak RSS MiB",
        "RSS before training MiB",
        "process s",
    ]


def run(
    workdir: Path,
    *,
    shape: Mapping[str, int],
    repeats: int,
    scaling: bool,
    overhead_shape: Mapping[str, int] | None = None,
    side_repeats: int | None = None,
) -> Section:
    """The three loops at ``shape`` (``repeats`` runs each); then, with ``side_repeats`` runs
    each, their per-step overhead at ``overhead_shape`` and (if ``scaling``) torchrun scaling."""
    side_repeats = side_repeats or repeats
    env = child_env(extra={"CODEX_ML_CACHE_DIR": str(workdir / "index-training")})
    variants = {LABELS[v]: timed_probe(probe("train", v, *_shape_args(shape)), env) for v in LABELS}
    samples = round_robin(variants, repeats)
    section = Section("4. Training throughput")
    tokens_per_step = shape["batch-size"] * shape["block-size"]
    first = samples[LABELS["functional"]].details[0]
    section.add(
        f"Model `decoder_only` (n_layer={shape['n-layer']}, n_head={shape['n-head']}, "
        f"n_embd={shape['n-embd']}, {first['parameters']:,} parameters), byte tokenizer, tiny "
        f"corpus; batch {shape['batch-size']} x {shape['block-size']} tokens "
        f"({tokens_per_step:,} tokens/step), {shape['steps']} steps, AdamW, "
        f"torch.set_num_threads({shape['threads']}), CPU. {repeats} fresh processes per variant, "
        "interleaved. The goals use tokens/s (wall time); tokens per CPU-second, which "
        "preemption by other work on a shared machine does not inflate, is shown beside it. "
        "Peak RSS is `ru_maxrss` of the whole process (interpreter, torch, and for "
        "transformers.Trainer the transformers import)."
    )
    section.add(table(_header("hand loop"), _rows(samples, LABELS["hand"])))
    functional = samples[LABELS["functional"]].median_of("tokens_per_s")
    section.goals += [
        Goal(
            "training: offline:functional / hand-written loop (tokens/s)",
            functional / samples[LABELS["hand"]].median_of("tokens_per_s"),
            0.97,
            ">=",
        ),
        Goal(
            "training: offline:functional / transformers.Trainer (tokens/s)",
            functional / samples[LABELS["hf"]].median_of("tokens_per_s"),
            1.0,
            ">=",
        ),
    ]
    all_samples: list[Sample] = list(samples.values())
    if overhead_shape is not None:
        all_samples += _overhead(env, overhead_shape, side_repeats, section)
    if scaling:
        scale = {
            "torchrun, 1 process x 1 thread": timed_probe(_torchrun(1, shape), env),
            "torchrun, 2 processes x 1 thread": timed_probe(_torchrun(2, shape), env),
            "no torchrun, 1 process x 2 threads": timed_probe(
                probe("train", "functional", *_shape_args({**shape, "threads": 2})), env
            ),
        }
        scaled = round_robin(scale, side_repeats)
        section.add(
            "**Data parallel scaling** of offline:functional (Gloo, same per-process batch; "
            "tokens/s counts every process):"
        )
        section.add(table(_header("1 process"), _rows(scaled, "torchrun, 1 process x 1 thread")))
        all_samples += list(scaled.values())
    section.add(
        "Raw tokens/s (steps 2..N) per run, in the order measured:\n\n"
        + "\n".join(
            f"- {s.name}: " + ", ".join(f"{d['tokens_per_s']:,.0f}" for d in s.details)
            for s in all_samples
        )
    )
    section.raw = {"shape": dict(shape), "samples": [s.to_json() for s in all_samples]}
    return section


def _overhead(
    env: Mapping[str, str], shape: Mapping[str, int], repeats: int, section: Section
) -> list[Sample]:
    """Each loop's own cost per step, on a model so small that compute is almost nothing."""
    variants = {
        f"{LABELS[v]} (tiny model)": timed_probe(probe("train", v, *_shape_args(shape)), env)
        for v in LABELS
    }
    samples = round_robin(variants, repeats)
    steps = shape["steps"] - 1  # steps 2..N are timed
    per_step = {
        name: statistics.median(d["steady_s"] / steps * 1e6 for d in sample.details)
        for name, sample in samples.items()
    }
    hand = per_step[f"{LABELS['hand']} (tiny model)"]
    section.add(
        f"**Per-step overhead of each loop**: the same three on a model so small that compute is "
        f"almost nothing (n_layer={shape['n-layer']}, n_embd={shape['n-embd']}, batch "
        f"{shape['batch-size']} x {shape['block-size']}, {shape['steps']} steps; median of "
        f"{repeats} processes):"
    )
    section.add(
        table(
            ["variant", "us per step", "vs hand loop"],
            [[name, f"{us:,.0f}", f"{us - hand:+,.0f} us"] for name, us in per_step.items()],
        )
    )
    return list(samples.values())


def overhead_shape(*, quick: bool) -> dict[str, int]:
    """A model so small that a step is mostly the training loop's own Python and launch costs."""
    return {
        "steps": 20 if quick else 300,
        "batch-size": 2,
        "block-size": 16,
        "n-layer": 1,
        "n-head": 2,
        "n-embd": 16,
        "warmup-steps": 1,
        "threads": 1,
    }


def default_shape(*, quick: bool, threads: int = 1) -> dict[str, int]:
    """The training run measured: small enough for a 2-core CPU, big enough to be compute-bound."""
    if quick:
        return {
            "steps": 4,
            "batch-size": 4,
            "block-size": 32,
            "n-layer": 1,
            "n-head": 2,
            "n-embd": 32,
            "warmup-steps": 1,
            "threads": threads,
        }
    # The functional trainer's own defaults for batch and block size, and decoder_only's for the
    # model: ~100 ms a step on one core, so per-step overheads of a loop are visible.
    return {
        "steps": 80,
        "batch-size": 8,
        "block-size": 128,
        "n-layer": 4,
        "n-head": 4,
        "n-embd": 128,
        "warmup-steps": 5,
        "threads": threads,
    }
