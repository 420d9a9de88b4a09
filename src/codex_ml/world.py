"""This process's place among the training processes, read from ``torchrun``'s environment.

``torchrun`` starts one process per device and tells each, in environment
variables, its rank, its rank on its machine, how many processes there are and
where they meet. This module is the one place that reads them: ``codex-ml
train`` reads a :class:`Process` once when it starts and hands it down, and
the trainer's :func:`~codex_ml.training.distributed.distributed_world` reads it
when it joins the others. Without ``torchrun`` a process is rank 0 of 1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Process:
    """Rank, local rank and world size of this process, and how ``torchrun`` started it."""

    rank: int = 0
    local_rank: int = 0  # the rank on this machine: which of its GPUs is this process's
    world_size: int = 1
    run_id: str | None = None  # the same on every rank of one torchrun job
    restart_count: int = 0  # how often torchrun restarted the job's workers
    master_addr: str = "localhost"  # torchrun's rendezvous store
    master_port: int | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the run directory and reports on the console."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def this_process(environ: Mapping[str, str] | None = None) -> Process:
    """This process as ``torchrun`` described it (rank 0 of 1 without it).

    Raises :class:`ValueError` for a variable that is set but not an integer.
    """
    env = os.environ if environ is None else environ
    return Process(
        rank=_integer(env, "RANK", 0),
        local_rank=_integer(env, "LOCAL_RANK", 0),
        world_size=_integer(env, "WORLD_SIZE", 1),
        run_id=env.get("TORCHELASTIC_RUN_ID"),
        restart_count=_integer(env, "TORCHELASTIC_RESTART_COUNT", 0),
        master_addr=env.get("MASTER_ADDR", "localhost"),
        master_port=_integer(env, "MASTER_PORT", 0) or None,
    )


def _integer(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"Environment variable {name}={value!r} is not an integer.") from None
