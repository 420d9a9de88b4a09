"""``codex-ml evaluate RUN [OVERRIDES] [--output FILE] [--max-tokens N] [--tasks ...]``: score it.

The whole held-out split by default (``--max-tokens N``: its first N tokens),
and with ``--tasks`` lm-evaluation-harness tasks (``--include-path DIR`` for
local task YAMLs, ``--limit N``, ``--num-fewshot K``).

Overrides use Hydra syntax on top of the run's own config, e.g.
``metrics=offline/all data=offline/lines data.path=qa.tsv reward_model=offline/heuristic``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from codex_ml.cli.evaluate_options import add_evaluate_options, evaluate_options, print_task_table
from codex_ml.cli.helptext import plain
from codex_ml.cli.run_arguments import add_run_arguments


def run(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="codex-ml evaluate", description=plain(__doc__))
    add_run_arguments(parser)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (metrics=..., data=...)")
    parser.add_argument(
        "--output", help="where to write the JSON report (default: RUN/evaluation.json)"
    )
    add_evaluate_options(parser)
    args = parser.parse_intermixed_args(argv)

    from codex_ml.cli.errors import report

    try:
        from codex_ml.registry.faults import plugin_faults
        from codex_ml.run.evaluate import evaluate_job
        from codex_ml.run.plugin_faults import warn

        warn("evaluate", plugin_faults())

        result = evaluate_job(
            args.target, args.overrides, args.output, args.config_dir, evaluate_options(args)
        )
    except Exception as exc:
        return report("evaluate", exc)
    # stdout is the JSON alone (`| python -m json.tool` works); messages go to stderr.
    keys = ("metrics", "held_out", "reward", "tasks")
    print(json.dumps({k: result.get(k) for k in keys if k in result or k == "reward"}, indent=2))
    print_task_table(result)
    print(f"checkpoint: {result['checkpoint']['path']}", file=sys.stderr)
    print(f"report: {result['report_path']}", file=sys.stderr)
    return 0
