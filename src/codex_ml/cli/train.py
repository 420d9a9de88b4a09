"""``codex-ml train [OPTIONS] [OVERRIDES]``: compose a run with Hydra and train it.

Hydra's override syntax and its usual options (``-cn``, ``-cd``, ``-m``,
``--cfg job``) work as with any Hydra app, but only Hydra's compose API is
used: codex-ml owns the run directory, its records and its logging, so nothing
in a config can make Hydra import code (``docs/decisions.md``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_ml.config import ConfigError

if TYPE_CHECKING:
    from codex_ml.run.assemble import Plan
    from codex_ml.world import Process

#: Hydra options that codex-ml does not offer, and what to do instead.
_NOT_OFFERED = {
    "-cp": "use -cd DIR to add a folder of presets",
    "--config-path": "use -cd DIR to add a folder of presets",
    "-sc": "shell completion is not offered for codex-ml train",
    "--shell-completion": "shell completion is not offered for codex-ml train",
    "--info": "`codex-ml plugins list` shows the components and --help the presets",
    "--experimental-rerun": "resume a run with training.resume=RUN_DIR",
    "-p": "--cfg job prints the whole config",
    "--package": "--cfg job prints the whole config",
}


@dataclass
class Invocation:
    """What ``codex-ml train`` was asked to do."""

    config_name: str = "train"
    config_name_given: bool = False
    config_dirs: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    multirun: bool = False
    show: str | None = None  # --cfg job|hydra|all
    resolve: bool = False
    help: str | None = None  # "codex-ml", "hydra" or "version"


def _split_options(argv: Sequence[str]) -> Iterator[tuple[str, str | None]]:
    """(flag, value) for each option (``-cn NAME``, ``--config-name=NAME``), (arg, None) else."""
    args = list(argv)
    while args:
        arg = args.pop(0)
        flag, has_value, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if flag not in _VALUED:
            yield arg, None
        elif has_value:
            yield flag, inline
        elif args:
            yield flag, args.pop(0)
        else:
            raise ConfigError(f"{flag} needs a value.", where=flag)


#: The options that take a value.
_VALUED = ("-cn", "--config-name", "-cd", "--config-dir", "-c", "--cfg")


def parse(argv: Sequence[str]) -> Invocation:
    """Hydra's command line, options anywhere among the overrides."""
    invocation = Invocation()
    for arg, value in _split_options(argv):
        if arg in ("-h", "--help"):
            invocation.help = "codex-ml"
        elif arg == "--hydra-help":
            invocation.help = "hydra"
        elif arg == "--version":
            invocation.help = "version"
        elif arg in ("-cn", "--config-name"):
            invocation.config_name = str(value)
            invocation.config_name_given = True
        elif arg in ("-cd", "--config-dir"):
            invocation.config_dirs.append(str(value))
        elif arg in ("-m", "--multirun"):
            invocation.multirun = True
        elif arg in ("-c", "--cfg"):
            if value not in ("job", "hydra", "all"):
                raise ConfigError(f"--cfg takes job, hydra or all, not {value!r}.", where="--cfg")
            invocation.show = value
        elif arg == "--resolve":
            invocation.resolve = True
        elif arg.split("=", 1)[0] in _NOT_OFFERED:
            flag = arg.split("=", 1)[0]
            raise ConfigError(f"{flag} is not offered by codex-ml train: {_NOT_OFFERED[flag]}.")
        elif arg.startswith("-"):
            raise ConfigError(
                f"{arg}: unknown option. codex-ml train takes -cn NAME, -cd DIR, -m, --cfg job, "
                f"--resolve and Hydra overrides (key=value); see codex-ml train --help."
            )
        else:
            invocation.overrides.append(arg)
    return invocation


def sweep(overrides: Sequence[str]) -> list[list[str]]:
    """The jobs of a multirun: one list of overrides per combination of swept values."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser

    choices: list[list[str]] = []
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    for text, override in zip(overrides, parsed, strict=True):
        if override.is_sweep_override():
            key = override.get_key_element()
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            choices.append([text])
    return [list(job) for job in itertools.product(*choices)]


def _given(overrides: Sequence[str], key: str) -> bool:
    return any(o.split("=", 1)[0] == key for o in overrides)


@dataclass
class Job:
    """One run of a (multi)run: its overrides, composed config, checked plan and directory."""

    overrides: list[str]
    cfg: Any
    run_dir: Path
    unique: bool  # the default name: made unique rather than shared
    plan: Plan | None = None  # checked before any job runs (not for --cfg, which only prints)
    plugin_faults: list[str] = field(default_factory=list)  # discovery faults, told in the run


def jobs_of(invocation: Invocation, process: Process) -> list[Job]:
    """Compose every job before any runs, so a bad value late in a sweep fails first."""
    from omegaconf import OmegaConf, open_dict

    from codex_ml.run.compose import compose_config

    overrides = invocation.overrides
    job_overrides = sweep(overrides) if invocation.multirun else [list(overrides)]
    jobs: list[Job] = []
    sweep_dir: Path | None = None
    for num, chosen in enumerate(job_overrides):
        cfg = compose_config(invocation.config_name, chosen, invocation.config_dirs)
        with open_dict(cfg):
            cfg.hydra.job.num = num
        if not invocation.multirun:
            run_dir = _run_dir(cfg, overrides, process)
            jobs.append(Job(chosen, cfg, run_dir, not _given(overrides, "hydra.run.dir")))
            continue
        if sweep_dir is None:  # resolved once: a sweep started at 12:00:59 stays in one folder
            sweep_dir = Path(str(OmegaConf.select(cfg, "hydra.sweep.dir")))
        subdir = str(OmegaConf.select(cfg, "hydra.sweep.subdir"))
        jobs.append(Job(chosen, cfg, sweep_dir / subdir, False))
    return jobs


def check_jobs(jobs: Sequence[Job], resumed_from: Path | None) -> None:
    """Give each job its checked plan, the one check of its config, before any job runs."""
    from codex_ml.run.assemble import checked_plan
    from codex_ml.run.plugin_faults import checked_plugin_faults
    from codex_ml.run.restore import check_resume_shape

    for job in jobs:
        job.plan = checked_plan(job.cfg)
        if resumed_from is not None:
            check_resume_shape(resumed_from, job.plan.config)
        job.plugin_faults = checked_plugin_faults(job.plan.run)  # strict_plugins: refused here


def _run_dir(cfg: Any, overrides: Sequence[str], process: Process) -> Path:
    """The run directory; under torchrun every rank agrees on one (a timestamp could differ)."""
    from omegaconf import OmegaConf

    if process.distributed and not _given(overrides, "hydra.run.dir"):
        return Path("runs") / f"torchrun-{process.run_id or 'ddp'}"
    return Path(str(OmegaConf.select(cfg, "hydra.run.dir")))


def run(argv: Sequence[str]) -> int:
    from codex_ml.cli.errors import report

    try:
        invocation = parse(argv)
        if invocation.help:
            from codex_ml.cli.train_help import help_text

            print(help_text(invocation.help))
            return 0
        from codex_ml.world import this_process

        process = this_process()  # read once, and handed to everything that needs it
        jobs = _checked_jobs(invocation, process)
    except Exception as exc:
        return report("train", exc)
    if invocation.show:
        for job in jobs:
            _show(job.cfg, invocation.show, invocation.resolve)
        return 0
    if invocation.multirun:
        _claim_sweep_directory(invocation, jobs)
    status = 0
    for job in jobs:
        status = max(status, _run_job(invocation, job, process))
        if status != 0:
            break  # a failed or interrupted run stops the sweep
    return status


def _checked_jobs(invocation: Invocation, process: Process) -> list[Job]:
    """The jobs asked for, composed and checked (not checked for --cfg, which only prints).

    The overrides are checked against the chosen presets first, for errors
    that name the accepted keys; then each job is composed once and checked once.
    """
    from codex_ml.run.precheck import precheck

    resumed_from = _continue_resumed_run(invocation)
    precheck(invocation.config_name, invocation.overrides, invocation.config_dirs)
    jobs = jobs_of(invocation, process)
    if not invocation.show:
        check_jobs(jobs, resumed_from)
    if invocation.multirun and process.distributed:
        raise ConfigError(
            "-m (multirun) cannot be combined with torchrun: every rank would run the "
            "sweep. Start one torchrun per value instead.",
            where="-m",
        )
    return jobs


def _claim_sweep_directory(invocation: Invocation, jobs: Sequence[Job]) -> None:
    """A sweep's own folder (made unique, as a run's is, unless named) holds its runs."""
    sweep_root = jobs[0].run_dir.parent
    if not _given(invocation.overrides, "hydra.sweep.dir"):
        from codex_ml.run.rundir import create_unique

        sweep_root = create_unique(sweep_root)
        for job in jobs:
            job.run_dir = sweep_root / job.run_dir.name
    print(f"sweep directory: {sweep_root} ({len(jobs)} runs)")


def _continue_resumed_run(invocation: Invocation) -> Path | None:
    """With ``training.resume=RUN``, start from RUN's own preset, overrides and ``-cd`` folders."""
    from codex_ml.run import restore

    given = restore.Invocation(invocation.config_name, invocation.overrides, invocation.config_dirs)
    combined, run_dir = restore.resumed_invocation(
        given, config_name_given=invocation.config_name_given
    )
    invocation.config_name = combined.config_name
    invocation.overrides = combined.overrides
    invocation.config_dirs = combined.config_dirs
    return run_dir


def _run_job(invocation: Invocation, job: Job, process: Process) -> int:
    """Claim the run directory (rank 0), train in it, print the outcome; the exit status."""
    from codex_ml.cli.errors import report
    from codex_ml.cli.outcome import print_outcome
    from codex_ml.run.rundir import owned
    from codex_ml.run.runlog import run_logging
    from codex_ml.run.train import Finished, TrainJob, train_job

    plan = job.plan
    assert plan is not None, "check_jobs gives every job its plan before any runs"

    def train(run_dir: Path) -> Finished:
        # Rank 0 writes <run_dir>/train.log; every rank reports warnings on stderr.
        logged_in = run_dir if process.is_main else None
        with run_logging(logged_in, rank=process.rank, world_size=process.world_size):
            return train_job(
                TrainJob(
                    plan=plan,
                    cfg=job.cfg,
                    run_dir=run_dir,
                    config_name=invocation.config_name,
                    overrides=job.overrides,
                    config_dirs=invocation.config_dirs,
                    process=process,
                    plugin_faults=job.plugin_faults,
                )
            )

    try:
        with _terminated_cleanly():
            if not process.is_main:  # only rank 0 owns and writes the directory
                return train(job.run_dir).status
            with owned(job.run_dir, unique=job.unique) as run_dir:
                finished = train(run_dir.path)
                if finished.summary is not None:
                    print_outcome(finished.summary, run_dir.path)
                return finished.status
    except Exception as exc:
        return report("train", exc)


@contextmanager
def _terminated_cleanly() -> Iterator[None]:
    """SIGTERM or SIGHUP outside the training loop (which checkpoints on them) ends the job as
    an exit 128 + the signal (143, 129).

    Without this, a signal while the components load would kill the process on
    the spot and leave its half-made run directory behind.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        print(f"codex-ml train: terminated ({signal.Signals(signum).name})", file=sys.stderr)
        raise SystemExit(128 + signum)

    handled = (signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, terminate) for signum in handled}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _show(cfg: Any, part: str, resolve: bool) -> None:
    """``--cfg job|hydra|all``: print the composed config, secrets from the environment hidden."""
    from omegaconf import OmegaConf

    from codex_ml.run.outputs import Redaction

    data = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(data, dict)
    if part == "job":
        data.pop("hydra", None)
    elif part == "hydra":
        data = {"hydra": data["hydra"]}
    if resolve:
        node = OmegaConf.create(data)
        data = Redaction.of(data)(OmegaConf.to_container(node, resolve=True))
    sys.stdout.write(OmegaConf.to_yaml(data))
