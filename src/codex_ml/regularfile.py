"""Reading a file codex-ml wrote itself: only ever a regular file, and never more than it can be.

A token store, a checkpoint or a run directory is a folder anyone may have
touched, and a plain ``open(path).read()`` trusts what is at the name: a named
pipe there blocks the reader for ever (``prepare``, ``train
training.resume=`` and ``generate`` hung on one), and a link to ``/dev/zero``
is read until memory runs out. codex-ml only ever writes regular files there,
so every such read goes through :func:`open_regular` or :func:`read_regular`,
which refuse anything else by name before reading a byte:

- the name is looked at with ``lstat`` (a link is refused, whatever it points
  at; so are FIFOs, devices, sockets and folders), then opened with
  ``O_NOFOLLOW | O_NONBLOCK`` (a pipe or link swapped in meanwhile neither
  blocks nor is followed) and checked again with ``fstat`` on what was opened;
- a file larger than the caller's ``limit`` (what that kind of file can hold)
  is refused before it is read, and the read stops at the limit anyway.

A leaf: it imports only ``os``, ``stat`` and ``errno``.
"""

from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in after the lstat must not block the open
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


class IrregularFileError(OSError):
    """A file codex-ml wrote is not a regular file now, or is larger than it can be.

    ``path`` is the file; ``what`` says what it is instead (``"is a named pipe
    (FIFO)"``). An ``OSError``: readers that treat an unreadable file as damaged
    treat this one the same way.
    """

    def __init__(self, path: str | os.PathLike[str], what: str) -> None:
        self.path = os.fspath(path)
        self.what = what
        super().__init__(errno.EINVAL, f"{self.path} {what}, not a regular file codex-ml wrote")

    def __str__(self) -> str:
        return str(self.args[1])


def describe_mode(mode: int, path: str | os.PathLike[str] = "") -> str:
    """``"is a named pipe (FIFO)"``, ``"is a symbolic link to /dev/zero"``...; "" for a file."""
    for test, name in _KINDS:
        if test(mode):
            if name == "a symbolic link" and path:
                try:
                    return f"is a symbolic link to {os.readlink(path)}"
                except OSError:
                    pass
            return f"is {name}"
    return "" if stat.S_ISREG(mode) else "is not a regular file"


def check_regular(path: str | os.PathLike[str]) -> os.stat_result:
    """``lstat`` of ``path``, which must be a regular file (not a link to one); never opens it.

    Raises ``FileNotFoundError`` when nothing is there, :class:`IrregularFileError`
    for anything but a regular file.
    """
    info = os.lstat(path)
    what = describe_mode(info.st_mode, path)
    if what:
        raise IrregularFileError(path, what)
    return info


def open_regular(path: str | os.PathLike[str], *, limit: int | None = None) -> BinaryIO:
    """``path`` opened for binary reading, if it is a regular file of at most ``limit`` bytes.

    See the module docstring; ``limit=None`` puts no bound on the size (a
    file whose size the caller checks against a recorded one).
    """
    check_regular(path)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a link put there after the lstat
            raise IrregularFileError(path, "is a symbolic link") from None
        raise
    try:
        info = os.fstat(fd)
        what = describe_mode(info.st_mode)
        if what:
            raise IrregularFileError(path, what)
        if limit is not None and info.st_size > limit:
            raise IrregularFileError(
                path, f"has {info.st_size:,} bytes, more than the {limit:,} such a file can hold"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], *, limit: int) -> bytes:
    """The content of ``path``: a regular file of at most ``limit`` bytes (:func:`open_regular`).

    The read stops at ``limit``: a file that grows while it is read is refused too.
    """
    with open_regular(path, limit=limit) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise IrregularFileError(path, f"has more than the {limit:,} bytes such a file can hold")
    return data


def read_regular_text(path: str | os.PathLike[str], *, limit: int) -> str:
    """:func:`read_regular` decoded as UTF-8 (``UnicodeDecodeError`` when it is not)."""
    return read_regular(path, limit=limit).decode("utf-8")
