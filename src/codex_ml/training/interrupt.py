"""Ctrl-C as a request to stop cleanly, not an exception in the middle of a step."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType


class GracefulInterrupt:
    """While active, the first SIGINT sets :attr:`requested`; a second one raises as usual.

    Signal handlers can only be installed from the main thread; elsewhere this
    does nothing and Ctrl-C keeps its usual meaning. The previous handler is
    restored on exit.
    """

    def __init__(self, *, notice: str | None = None) -> None:
        self.requested = False
        self._notice = notice  # printed to stderr on the first SIGINT
        self._installed = False
        self._previous: signal.Handlers | object = signal.SIG_DFL

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, self._handle)
            # None: a handler not installed from Python, which cannot be restored; use the default.
            self._previous = signal.default_int_handler if previous is None else previous
            self._installed = True
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self._notice:
            print(f"\n{self._notice}", file=sys.stderr, flush=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
