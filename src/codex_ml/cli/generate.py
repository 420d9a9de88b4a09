"""``codex-ml generate RUN --prompt TEXT``: print samples from a trained run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from codex_ml.cli.helptext import plain
from codex_ml.cli.run_arguments import add_run_arguments


def run(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="codex-ml generate", description=plain(__doc__))
    add_run_arguments(parser)
    parser.add_argument("--prompt", action="append", required=True, help="repeat for several")
    parser.add_argument("--num-samples", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=80)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 for greedy decoding")
    parser.add_argument("--top-k", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from codex_ml.cli.errors import report

    try:
        from codex_ml.registry.faults import plugin_faults
        from codex_ml.run.evaluate import generate_job
        from codex_ml.run.plugin_faults import warn

        warn("generate", plugin_faults())

        generated = generate_job(
            args.target,
            args.prompt,
            num_samples=args.num_samples,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k or None,
            seed=args.seed,
            config_dirs=args.config_dir,
            checkpoint=args.checkpoint,
        )
    except Exception as exc:
        return report("generate", exc)
    print(f"checkpoint: {generated.checkpoint}", file=sys.stderr)  # stdout is the samples alone
    for sample in generated.samples:
        print(f"{sample['prompt']}{sample['completion']}")
        print("---")
    return 0
