"""``codex-ml export RUN --out DIR``: a folder that ``transformers`` loads with nothing else.

The run's model becomes a standard architecture (GPT-2 for learned positions,
GPT-NeoX for rotary ones; a Hugging Face model stays its own type), with
safetensors weights, a generation config and the tokenizer as Hugging Face
files; an adapter run's adapter is merged into the weights, or with
``--adapter-only`` written as a ``peft`` adapter folder. The folder is kept
only if greedy generation from it gives exactly the text
``codex-ml generate --temperature 0`` gives.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from codex_ml.cli.helptext import plain
from codex_ml.cli.run_arguments import add_run_arguments


def run(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="codex-ml export", description=plain(__doc__))
    add_run_arguments(parser)
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="the folder to write (new or empty)"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace a non-empty --out once the export is done"
    )
    parser.add_argument(
        "--adapter-only",
        action="store_true",
        help="an adapter run as a peft adapter folder (PeftModel.from_pretrained) instead of "
        "merged into the base weights",
    )
    args = parser.parse_args(argv)

    from codex_ml.cli.errors import report

    try:
        from codex_ml.export import export_run

        result = export_run(
            args.target,
            args.out,
            checkpoint=args.checkpoint,
            force=args.force,
            adapter_only=args.adapter_only,
            config_dirs=args.config_dir,
        )
    except Exception as exc:
        return report("export", exc)
    print(
        f"exported {result.checkpoint} as {result.architecture} to {result.out} "
        f"(checked: transformers' greedy generation matches codex-ml's on "
        f"{result.verified_prompts} prompts)"
    )
    return 0
