"""Section 6, compiled training on the CPU (issue 12): ``training.compile=true`` against the
eager trainer and against a ``torch.compile``d hand-written loop.

The same probe as section 4 (``benchmarks/probes/train.py``, a fresh process
per run, variants interleaved), at section 4's default size, with
``--compile``: the functional trainer compiles its step (``compile=True``),
the hand loop calls ``torch.compile(model)`` as nanoGPT does. The compiling
first step is outside the steady-state figures (steps 2..N); its cost shows in
the end-to-end column and in "process s". Run alone with
``python -m benchmarks.compile_training`` (``--quick``: toy sizes).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks.generation import markdown
from benchmarks.measure import child_env, probe, round_robin, timed_probe
from benchmarks.report import Goal, Section, table
from benchmarks.training import _header, _rows, _shape_args, default_shape

EAGER = "codex-ml offline:functional (eager)"
COMPILED = "codex-ml offline:functional, compile=true"
HAND_COMPILED = "hand-written loop, torch.compile"
HAND = "hand-written loop (eager)"

VARIANTS = {
    EAGER: ("functional", False),
    COMPILED: ("functional", True),
    HAND_COMPILED: ("hand", True),
    HAND: ("hand", False),
}


def run(workdir: Path, *, shape: Mapping[str, int], repeats: int) -> Section:
    """The four loops at ``shape``, ``repeats`` fresh processes each, interleaved."""
    env = child_env(extra={"CODEX_ML_CACHE_DIR": str(workdir / "index-compile")})
    variants = {
        name: timed_probe(
            probe("train", loop, *_shape_args(shape), *(["--compile"] if compiled else [])), env
        )
        for name, (loop, compiled) in VARIANTS.items()
    }
    samples = round_robin(variants, repeats)
    section = Section("6. Compiled training on the CPU (issue 12)")
    section.add(
        f"`decoder_only` (n_layer={shape['n-layer']}, n_head={shape['n-head']}, "
        f"n_embd={shape['n-embd']}), byte tokenizer, tiny corpus; batch {shape['batch-size']} x "
        f"{shape['block-size']} tokens, {shape['steps']} steps, AdamW, "
        f"torch.set_num_threads({shape['threads']}), CPU inductor. {repeats} fresh processes per "
        "variant, interleaved. Steady state is steps 2..N: step 1 compiles (with a warm inductor "
        "cache after the first process); that cost is in the end-to-end and process columns."
    )
    section.add(table(_header("compiled hand loop"), _rows(samples, HAND_COMPILED)))
    tps = {name: sample.median_of("tokens_per_s") for name, sample in samples.items()}
    section.goals += [
        Goal(
            "compiled training: offline:functional compile=true / compiled hand loop (tokens/s)",
            tps[COMPILED] / tps[HAND_COMPILED],
            1.0,
            ">=",
        ),
    ]
    section.add(
        f"compile=true over the eager trainer: {tps[COMPILED] / tps[EAGER]:.2f}x; the compiled "
        f"hand loop over the eager one: {tps[HAND_COMPILED] / tps[HAND]:.2f}x."
    )
    section.raw = {"shape": dict(shape), "samples": [s.to_json() for s in samples.values()]}
    return section


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compile_training", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="toy sizes, a few seconds each")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    shape = default_shape(quick=args.quick, threads=args.threads)
    with TemporaryDirectory(prefix="codex-ml-bench-") as tmp:
        section = run(Path(tmp), shape=shape, repeats=1 if args.quick else args.repeats)
    print(markdown(section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
