"""Activation checkpointing: the peak memory it saves and the time it costs (issue 19).

``training.activation_checkpointing=true`` keeps only each block's input in the
forward pass and recomputes the rest in the backward pass. This trains the
same ``decoder_only`` model on the same data with it off and on, each run a
fresh process (``benchmarks/probes/activations.py``), the two interleaved,
at a size where activations dominate the memory of a step (long blocks, many
layers, a small width: the weights and AdamW's state are a few dozen MB, the
activations of a step hundreds). Reported per variant: the peak memory the run
added over what the process held before training, and the median step time;
then the ratios on/off. The losses of both must be the same, step for step.

    python -m benchmarks.activation_checkpointing            # 3 runs of each
    python -m benchmarks.activation_checkpointing --quick    # toy size, 1 run
    python -m benchmarks.activation_checkpointing --device cuda
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks.measure import Sample, child_env, probe, round_robin, timed_probe
from benchmarks.report import Section, table

OFF, ON = "activation_checkpointing=false", "activation_checkpointing=true"

#: Activations dominate: 8 layers x 256 tokens x 8 blocks at width 128 (1.6M parameters).
SHAPE = {"n-layer": 8, "n-head": 4, "n-embd": 128, "block-size": 256, "batch-size": 8, "steps": 6}
QUICK_SHAPE = {
    "n-layer": 2,
    "n-head": 2,
    "n-embd": 32,
    "block-size": 64,
    "batch-size": 2,
    "steps": 3,
}


def run(
    workdir: Path, *, shape: Mapping[str, int], repeats: int, device: str = "cpu", threads: int = 1
) -> Section:
    """Both variants at ``shape``, ``repeats`` fresh processes each, interleaved."""
    env = child_env(extra={"CODEX_ML_CACHE_DIR": str(workdir / "index")})
    args = [f"--{k}={v}" for k, v in shape.items()] + [f"--device={device}", f"--threads={threads}"]
    variants = {
        name: timed_probe(probe("activations", mode, *args), env)
        for name, mode in ((OFF, "off"), (ON, "on"))
    }
    samples = round_robin(variants, repeats)
    _check_same_losses(samples)
    memory = {name: s.median_of("peak_mb") for name, s in samples.items()}
    step = {name: s.median_of("step_s") for name, s in samples.items()}
    where = "GPU memory allocated" if device.startswith("cuda") else "peak resident memory"
    section = Section("Activation checkpointing (issue 19)")
    section.add(
        f"`decoder_only` (n_layer={shape['n-layer']}, n_head={shape['n-head']}, "
        f"n_embd={shape['n-embd']}, dropout 0.1), byte tokenizer; batch {shape['batch-size']} x "
        f"{shape['block-size']} tokens, {shape['steps']} steps, AdamW, fp32, device {device}, "
        f"{threads} torch thread(s). {repeats} fresh processes per variant, interleaved; medians. "
        f"Memory: the {where} the run added over what the process held before training."
    )
    rows = [
        [
            name,
            f"{memory[name]:,.0f}",
            f"{_spread(samples[name], 'peak_mb')}",
            f"{step[name]:.3f}",
            f"{_spread(samples[name], 'step_s', '{:.3f}')}",
        ]
        for name in samples
    ]
    section.add(table(["variant", "peak MiB added", "range", "step s (median)", "range"], rows))
    saved, paid = memory[ON] / memory[OFF], step[ON] / step[OFF]
    section.add(
        f"On / off: peak memory {saved:.2f}x ({memory[OFF] - memory[ON]:,.0f} MiB saved), "
        f"step time {paid:.2f}x; the losses of every step are identical."
    )
    section.raw = {"shape": dict(shape), "samples": [s.to_json() for s in samples.values()]}
    return section


def _spread(sample: Sample, key: str, form: str = "{:,.0f}") -> str:
    values = [float(d[key]) for d in sample.details]
    return f"{form.format(min(values))} - {form.format(max(values))}"


def _check_same_losses(samples: Mapping[str, Sample]) -> None:
    losses = {tuple(d["losses"]) for s in samples.values() for d in s.details}
    if len(losses) != 1:
        raise RuntimeError(f"the runs' losses differ: {sorted(losses)}")


def markdown(section: Section) -> str:
    return "\n\n".join([f"## {section.title}", *section.body])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.activation_checkpointing", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="toy size, one run of each")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    shape = QUICK_SHAPE if args.quick else SHAPE
    with TemporaryDirectory(prefix="codex-ml-bench-") as tmp:
        section = run(
            Path(tmp),
            shape=shape,
            repeats=1 if args.quick else args.repeats,
            device=args.device,
            threads=args.threads,
        )
    print(markdown(section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
