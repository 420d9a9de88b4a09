"""The errors a training run raises on purpose, importable without torch."""

from __future__ import annotations

from pathlib import Path


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, corrupt, or does not fit the model.

    ``path`` is the file (or directory) at fault, so a caller can point at it.
    """

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path: Path | None = Path(path) if path is not None else None


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (usually a full disk); nothing earlier was touched.

    ``path`` is the ``checkpoints/`` folder; ``previous`` the newest complete
    checkpoint in it after the failure (``None`` when there is none), which a
    resume picks up.
    """

    def __init__(self, message: str, *, path: str | Path, previous: Path | None) -> None:
        super().__init__(message, path=path)
        self.previous = previous


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite; the run stopped without saving.

    ``step`` is the step at which the bad loss was seen (the loss is only read
    back at log steps, so it went bad somewhere after ``since_step``) and
    ``last_checkpoint`` the newest checkpoint written before it (``None`` when
    none was), which is left untouched so a run can be resumed from it.
    """

    def __init__(
        self, *, step: int, loss: float, last_checkpoint: Path | None, since_step: int | None = None
    ) -> None:
        where = (
            f"The last good checkpoint is {last_checkpoint}; resume from it (resume_from=, "
            "or training.resume= on the command line) with a lower lr or a tighter grad_clip."
            if last_checkpoint is not None
            else "No checkpoint was written before it; restart with a lower lr or a "
            "tighter grad_clip."
        )
        when = f"at step {step}"
        if since_step is not None and since_step < step - 1:
            when = f"in steps {since_step + 1}..{step}"
        super().__init__(f"Training diverged: the loss became {loss} {when}. {where}")
        self.step = step
        self.loss = loss
        self.last_checkpoint = last_checkpoint


class StopTraining(Exception):
    """Raised by a callback or lifecycle hook to end the run early, on purpose.

    The trainer finishes the step, saves a checkpoint and returns; the run's
    summary has ``status: "stopped"`` and this message as ``stop_reason``, and
    ``codex-ml train`` exits 0. Under ``torchrun`` a request on any rank stops
    every rank at the same step. Any other exception from a callback is a fault:
    reported, the callback switched off, and the run goes on.
    """

    def __init__(self, reason: str = "a callback asked the run to stop") -> None:
        super().__init__(reason)
        self.reason = reason
