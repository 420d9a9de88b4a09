"""Writing in a run directory without ever writing through a link planted there.

A run directory is often shared, copied from someone else, or reused by a
resume, so anything in it may be a symbolic link someone else put there. Plain
``open(path, "w")`` follows such a link: a link ``checkpoints/.latest.tmp ->
~/.bashrc`` made a resume overwrite ``~/.bashrc``, and ``metrics.jsonl ->
~/.ssh/authorized_keys`` made a run append to it. Every file codex-ml writes in
a run directory therefore goes through this module, which

- refuses a path that already exists as a symbolic link (:class:`UnsafePathError`,
  naming the link and what to do), and a file to append to that has other hard
  links or is not a regular file;
- replaces a file through :mod:`codex_ml.atomicfile` (an exclusively created
  temporary file, then one atomic ``os.replace``, which swaps directory entries
  and never writes through a link), optionally fsyncing file and folder.

The run directory itself may be a link (``runs -> /scratch/runs`` is a common
and deliberate set-up); only what lies inside it is checked.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any

from codex_ml import atomicfile

#: ``O_NOFOLLOW`` and ``O_CLOEXEC`` where the platform has them (every POSIX system does).
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a planted FIFO must not block the open
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _NONBLOCK


class UnsafePathError(PermissionError):
    """A file in a run directory is a link (or not a plain file), so codex-ml will not write it.

    A ``PermissionError``: the command line reports it as one paragraph, like
    any other file the user has to fix. ``path`` is the offending entry.
    """

    def __init__(self, path: str | Path, what: str) -> None:
        self.path: Path = Path(path)
        super().__init__(
            f"{self.path} {what}; codex-ml never writes through a link in a run directory, "
            "because a link planted there would make it overwrite or append to the file the "
            f"link points at. Nothing was written. Remove it (rm {self.path}) if you did not "
            "put it there, or use another run directory."
        )


def _link_description(path: Path) -> str:
    try:
        return f"is a symbolic link to {os.readlink(path)}"
    except OSError:
        return "is a symbolic link"


def refuse_link(
    path: str | Path, refusal: Callable[[Path, str], Exception] = UnsafePathError
) -> None:
    """Raise ``refusal(path, what)`` if ``path`` exists as a symbolic link (dangling or not).

    ``what`` says it is a link and to what. The default refusal is for writing
    in a run directory; a reader passes its own (a checkpoint file that is a
    link is a ``CheckpointError``: never read through it).
    """
    path = Path(path)
    if path.is_symlink():
        raise refusal(path, _link_description(path))


def refuse_links(folder: str | Path, names: Iterable[str]) -> None:
    """:func:`refuse_link` for each of ``names`` in ``folder``: check a run directory up front."""
    for name in names:
        refuse_link(Path(folder) / name)


def make_dir(path: str | Path) -> Path:
    """``mkdir -p path``, refusing a ``path`` that is a link or not a directory."""
    path = Path(path)
    refuse_link(path)
    path.mkdir(parents=True, exist_ok=True)
    refuse_link(path)  # lost a race with someone planting a link
    return path


def make_temp_dir(parent: str | Path, prefix: str) -> Path:
    """A fresh private (0700) directory in ``parent``: ``mkdir`` never follows or reuses."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=make_dir(parent)))


def _unsafe_open_error(path: Path, exc: OSError) -> OSError:
    """``ELOOP`` from ``O_NOFOLLOW`` is a link at ``path``, ``ENXIO`` a FIFO without a reader."""
    if exc.errno == errno.ELOOP:
        return UnsafePathError(path, _link_description(path))
    if exc.errno == errno.ENXIO:
        return UnsafePathError(path, "is not a regular file")
    return exc


def open_append(path: str | Path, *, encoding: str = "utf-8") -> IO[str]:
    """Open ``path`` to append text, creating it; never through a link or into a shared file.

    Refused: a symbolic link (``O_NOFOLLOW``), a file with other hard links (a
    hard link to ``authorized_keys`` is as bad as a soft one), and anything that
    is not a regular file (a FIFO would block the run).
    """
    path = Path(path)
    try:
        fd = os.open(path, _APPEND, 0o666)
    except OSError as exc:
        raise _unsafe_open_error(path, exc) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePathError(path, "is not a regular file")
        if info.st_nlink > 1:
            raise UnsafePathError(path, f"has {info.st_nlink - 1} other hard link(s)")
        if _NONBLOCK:
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_NONBLOCK)
        return os.fdopen(fd, "a", encoding=encoding)
    except BaseException:
        os.close(fd)
        raise


def atomic_writer(
    path: str | Path, mode: str = "w", *, durable: bool = False, encoding: str | None = "utf-8"
) -> AbstractContextManager[IO[Any]]:
    """Write ``path`` through an exclusively created temporary file and an atomic rename.

    Refuses a ``path`` that is a link (:class:`UnsafePathError`), then as
    :func:`codex_ml.atomicfile.replacing`: ``mode`` is ``"w"`` (text) or
    ``"wb"``; with ``durable`` the file and then its folder are fsynced; if the
    block raises, ``path`` is left as it was.
    """
    refuse_link(path)
    return atomicfile.replacing(os.fspath(path), mode, durable=durable, encoding=encoding)


def write_atomic(path: str | Path, data: str | bytes, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` (see :func:`atomic_writer`)."""
    with atomic_writer(path, "wb" if isinstance(data, bytes) else "w", durable=durable) as handle:
        handle.write(data)


class SafeFileHandler(logging.FileHandler):
    """``logging.FileHandler`` that opens its file with :func:`open_append` (for ``train.log``).

    Hydra's job logging opens ``<run dir>/train.log`` with a plain
    ``FileHandler``, which appends through a planted link; naming this class
    in the job-logging config instead makes such a link an error.
    """

    def _open(self) -> IO[str]:
        if "a" not in self.mode:
            raise ValueError(f"SafeFileHandler only appends (mode='a'), not mode={self.mode!r}")
        return open_append(self.baseFilename, encoding=self.encoding or "utf-8")
