"""The arguments ``evaluate``, ``generate`` and ``export`` share: which run, which of its
checkpoints, and its extra preset folders."""

from __future__ import annotations

import argparse


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``TARGET``, ``--checkpoint latest|best|step-N`` and ``-cd DIR`` (repeatable)."""
    parser.add_argument("target", help="a run directory, its checkpoints/ or a step-N checkpoint")
    parser.add_argument(
        "--checkpoint",
        type=_checkpoint_choice,
        default=None,
        metavar="latest|best|step-N",
        help="which checkpoint of the run: latest (default: what TARGET names), best (a run "
        "trained with training.keep_best) or step-N",
    )
    parser.add_argument(
        "-cd",
        "--config-dir",
        action="append",
        default=[],
        help="a folder of presets (as for train); the run's own -cd folders are used anyway",
    )


def _checkpoint_choice(text: str) -> str:
    from codex_ml.run.checkpoint_choice import parse_checkpoint_choice

    try:
        return parse_checkpoint_choice(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
