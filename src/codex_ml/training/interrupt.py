"""Ctrl-C, SIGTERM and SIGHUP as a request to stop cleanly, not an exception mid-step.

``SIGTERM`` is what Slurm and Kubernetes send before ``SIGKILL``, and what
``torchrun`` forwards to its workers when it is itself told to stop (it
forwards Ctrl-C as ``SIGINT``). Both mean the same to a training run: finish
the step, save a checkpoint, stop. They differ in what a repeat means: a second
Ctrl-C is a person who does not want to wait, so it aborts at once; a second
``SIGTERM`` is a launcher or a scheduler repeating itself (Slurm signals every
process of a job step, and ``torchrun`` forwards what it got on top), so it is
ignored: the sender's ``SIGKILL`` at the end of its grace period is the hard stop.

``SIGHUP`` (the terminal or the SSH session a run was started from went away)
is treated as ``SIGTERM``: the run would otherwise die on the spot and lose the
steps since its last checkpoint.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType

#: The signals that ask a run to stop at its next step (no SIGHUP on Windows).
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
#: What the first line on stderr calls each stop signal other than Ctrl-C.
_SENT_BY = {"SIGTERM": "Terminated", "SIGHUP": "Hung up"}


def stop_notice(signum: int, then: str) -> str:
    """The line a run prints when ``signum`` first asks it to stop; ``then``: what it does next.

    ``"Terminated (SIGTERM): finishing this step, then I will save a checkpoint and stop."``
    """
    name = signal.Signals(signum).name
    if name in _SENT_BY:
        return f"{_SENT_BY[name]} ({name}): finishing this step, then I will {then}."
    return f"Interrupted: finishing this step, then I will {then}. Ctrl-C again aborts at once."


def exit_status(signal_name: str | None) -> int:
    """The exit status of a run that stopped at a checkpoint because of ``signal_name``.

    ``128 + N``, the status the signal itself gives a process it ends (130 for
    ``SIGINT``, 143 for ``SIGTERM``, 129 for ``SIGHUP``), so scripts written for the old behaviour
    see the status they expect; 130 when the signal is unknown (``None``).
    """
    if signal_name is None:
        return 128 + signal.SIGINT
    return 128 + signal.Signals[signal_name]


class GracefulInterrupt:
    """While active, the first of :data:`STOP_SIGNALS` sets :attr:`requested` (and :attr:`signum`).

    A later SIGINT raises ``KeyboardInterrupt`` as usual; a later SIGTERM or
    SIGHUP is ignored. Signal handlers can only be installed from the main
    thread; elsewhere this does nothing and the signals keep their usual meaning.
    The previous handlers are restored on exit.
    """

    def __init__(self, *, notice: Callable[[signal.Signals], str] | None = None) -> None:
        self.signum: int = 0  # the number of the signal that asked first; 0: none yet
        self._notice = notice  # what to print to stderr on the first signal
        self._previous: dict[signal.Signals, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum != 0

    @property
    def signal(self) -> str | None:
        """``"SIGINT"``, ``"SIGTERM"`` or ``"SIGHUP"``: the first to ask (None: none yet)."""
        return signal.Signals(self.signum).name if self.signum else None

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                previous = signal.signal(signum, self._handle)
                # None: a handler not installed from Python, which cannot be restored.
                default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
                self._previous[signum] = default if previous is None else previous
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return  # SIGTERM or SIGHUP again: the sender's SIGKILL is the hard stop
        self.signum = int(signum)
        if self._notice is not None:
            print(f"\n{self._notice(signal.Signals(signum))}", file=sys.stderr, flush=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        self._previous = {}
