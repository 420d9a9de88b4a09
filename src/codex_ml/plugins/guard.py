"""Running third-party code: whatever it raises is its fault, unless a signal raised it.

Catching ``Exception`` around a plugin is not enough: a module that calls
``sys.exit()`` at import, or a hook that raises ``KeyboardInterrupt`` or
``GeneratorExit``, would end the host with the plugin never named (and
``SystemExit(0)`` would even look like success). So every import of a hook
plugin, every hook call and every entry-point load goes through :func:`guarded`,
which returns any ``BaseException`` the code raised as a fault, to be reported
with the plugin like any other.

The one exception is a real signal: Ctrl-C, or a handler that ends the process
on SIGTERM or on a test timeout, must still stop the program, even while plugin
code runs. A ``KeyboardInterrupt`` from Ctrl-C and one from ``raise`` have the
same type, so they are told apart by where they were raised: an exception
whose traceback passes through a Python signal handler came from a signal.
Python's own SIGINT handler is written in C and leaves no frame, so while
plugin code runs in the main thread it is wrapped in :func:`_on_sigint`, a
Python function that raises the same ``KeyboardInterrupt``. Signal handlers only
ever run in the main thread, so elsewhere nothing needs wrapping.
"""

from __future__ import annotations

import _signal
import threading

TYPE_CHECKING = False  # typing is not imported on the listing path (~2 ms per process)
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType, FrameType
    from typing import Any, TypeVar

    T = TypeVar("T")

__all__ = ["describe_error", "from_signal", "guarded"]

#: What each exception that would end or unwind the host means, said in a fault report.
_MEANING = {
    SystemExit: "plugin code tried to end the process",
    KeyboardInterrupt: "raised by plugin code, not by Ctrl-C",
    GeneratorExit: "raised by plugin code outside a generator",
}

_depth = 0  # nesting of guarded() calls in the main thread (plugin code may load plugins)


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    """Python's default SIGINT handler, as a Python frame that :func:`from_signal` can see."""
    _signal.default_int_handler(signum, frame)


def guarded(function: Callable[..., T], *args: Any) -> tuple[T | None, BaseException | None]:
    """``(function(*args), None)``, or ``(None, error)`` for anything it raised but a signal.

    A ``BaseException`` that a signal handler raised (Ctrl-C, a SIGTERM handler
    calling ``sys.exit``, a test timeout) propagates: it is the user's, not the
    plugin's.
    """
    global _depth
    wrapped = False
    if threading.current_thread() is threading.main_thread():
        if _depth == 0 and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
            try:
                _signal.signal(_signal.SIGINT, _on_sigint)
                wrapped = True
            except ValueError:  # not the main interpreter: nothing to wrap
                pass
        _depth += 1
    try:
        return function(*args), None
    except BaseException as error:
        if from_signal(error):
            raise
        return None, error
    finally:
        if threading.current_thread() is threading.main_thread():
            _depth -= 1
            # Put Python's handler back, unless the plugin deliberately installed its own.
            if wrapped and _signal.getsignal(_signal.SIGINT) is _on_sigint:
                _signal.signal(_signal.SIGINT, _signal.default_int_handler)


def from_signal(error: BaseException) -> bool:
    """Whether ``error`` (or an exception it replaced) was raised by a signal handler.

    Only exceptions outside :class:`Exception` are examined: those are what
    signal handlers raise to stop a program; anything else is the plugin's.
    """
    if isinstance(error, Exception):
        return False
    handlers = _handler_codes()
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code in handlers:
                return True
            tb = tb.tb_next
        current = current.__context__
    return False


def _handler_codes() -> set[CodeType]:
    """The code objects of every Python-level signal handler installed now, and ours."""
    codes = {_on_sigint.__code__}
    for signum in _signal.valid_signals():
        try:
            handler = _signal.getsignal(signum)
        except (OSError, ValueError):
            continue
        if not callable(handler):
            continue  # SIG_DFL, SIG_IGN, or a handler installed outside Python
        function = getattr(handler, "__func__", handler)  # a bound method's function
        if not hasattr(function, "__code__"):  # a callable object: its __call__'s code
            function = getattr(type(handler).__call__, "__func__", type(handler).__call__)
        code = getattr(function, "__code__", None)
        if code is not None:
            codes.add(code)
    return codes


def describe_error(error: BaseException) -> str:
    """``Type: message`` in one paragraph, saying what an exception that ends a process meant."""
    text = " ".join(str(error).split())
    described = f"{type(error).__name__}: {text}" if text else type(error).__name__
    for kind, meaning in _MEANING.items():
        if isinstance(error, kind):
            return f"{described} ({meaning})"
    if not isinstance(error, Exception):
        return f"{described} (a BaseException raised by plugin code)"
    return described
