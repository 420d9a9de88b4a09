"""The arguments ``evaluate`` and ``generate`` share: which run, and its extra preset folders."""

from __future__ import annotations

import argparse


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``TARGET`` (a run, its checkpoints/ or one step-N) and ``-cd DIR`` (repeatable)."""
    parser.add_argument("target", help="a run directory, its checkpoints/ or a step-N checkpoint")
    parser.add_argument(
        "-cd",
        "--config-dir",
        action="append",
        default=[],
        help="a folder of presets (as for train); the run's own -cd folders are used anyway",
    )
