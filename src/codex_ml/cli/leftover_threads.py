"""A thread that plugin code left running never keeps ``codex-ml`` from exiting.

Python waits for every non-daemon thread before a process ends, so a plugin
module, hook or callback that starts one and never stops it would leave
``codex-ml train`` (or ``plugins list``) hanging after its work is done. When a
command returns with such threads alive, a daemon watchdog gives them
:data:`GRACE_S` seconds (the normal exit goes on meanwhile, so a thread that
finishes its last upload is waited for, and idle thread pools are shut down as
usual); any still running then are named in one warning on stderr, and the
process ends with the command's own exit status, without waiting for them.

Threads codex-ml starts itself are named ``codex-ml...`` and are not watched.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from contextlib import suppress

__all__ = ["GRACE_S", "foreign_threads", "watch_leftover_threads"]

#: How long threads left running after a command may take to finish before the process ends.
GRACE_S = 3.0
#: The prefix of the names of codex-ml's own threads.
OWN_PREFIX = "codex-ml"


def foreign_threads() -> list[threading.Thread]:
    """The non-daemon threads, other than this one and codex-ml's own, that are running."""
    current = threading.current_thread()
    return [
        thread
        for thread in threading.enumerate()
        if not thread.daemon
        and thread.is_alive()
        and thread is not current
        and thread is not threading.main_thread()
        and not thread.name.startswith(OWN_PREFIX)
    ]


def watch_leftover_threads(command: str, status: int) -> None:
    """If foreign threads are running, end the process after :data:`GRACE_S` if they still are.

    Returns at once; the watchdog is a daemon thread, so a process whose threads
    all finish exits as it always did.
    """
    leftover = foreign_threads()
    if not leftover:
        return
    watchdog = threading.Thread(
        target=_end_if_still_running,
        args=(command, status, leftover),
        name=f"{OWN_PREFIX}-leftover-threads",
        daemon=True,
    )
    watchdog.start()


def _end_if_still_running(command: str, status: int, leftover: list[threading.Thread]) -> None:
    deadline = time.monotonic() + GRACE_S
    for thread in leftover:
        thread.join(max(0.0, deadline - time.monotonic()))
    running = [thread for thread in leftover if thread.is_alive()]
    if not running:
        return
    names = "; ".join(_describe(thread) for thread in running)
    _warn(
        f"codex-ml {command}: warning: {len(running)} thread(s) that codex-ml did not start "
        f"still running {GRACE_S:g} s after the command finished would keep the process from "
        f"exiting: {names}. Exiting with status {status} without waiting for them; a plugin "
        "should stop the threads it starts, or make them daemon threads."
    )
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # closed, or a broken pipe
            stream.flush()
    os._exit(status)


def _describe(thread: threading.Thread) -> str:
    """``'name' (started in module.function, file:line)``: the thread's own outermost frame."""
    frame = sys._current_frames().get(thread.ident or -1)
    entry = None
    while frame is not None:
        if frame.f_code.co_filename != threading.__file__:
            entry = frame  # keep walking outwards: the last one outside threading.py wins
        frame = frame.f_back
    if entry is None:
        return repr(thread.name)
    code = entry.f_code
    where = f"{entry.f_globals.get('__name__', '?')}.{code.co_name}"
    return f"{thread.name!r} (running {where}, {code.co_filename}:{entry.f_lineno})"


def _warn(message: str) -> None:
    with suppress(OSError, ValueError):  # stderr closed (a broken pipe)
        print(message, file=sys.stderr, flush=True)
