"""Replace a file in one step, never opening a file or link that was already there.

The new content goes to a temporary file beside the target, created under a
fresh random name with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (so neither a planted
file nor a planted link is ever opened, let alone written through), and then
takes the target's name with one ``os.replace``, which swaps directory entries:
a link at the name is replaced, its target untouched. A reader sees the old
file or the new one, never half of one; a failure removes the temporary file.

This is the one way codex-ml replaces a file: :mod:`codex_ml.fsio` builds the
run directory's writes on it (adding the refusal of a link at the name), and
:mod:`codex_ml.plugins.discovery` writes its index with it. A leaf that imports
only ``os``, ``errno`` and ``contextlib``: the discovery index is written on a
process's start, where ``pathlib``, ``typing`` or ``secrets`` cost more than
the write.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager, suppress

TYPE_CHECKING = False  # typing is not imported on a listing process's path
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO, Any

_EXCLUSIVE = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def random_token() -> str:
    """12 random hex digits: the part of a temporary file's name nobody can guess."""
    return os.urandom(6).hex()


def create_exclusive(folder: str, prefix: str, suffix: str = ".tmp") -> tuple[str, int]:
    """Create a new file ``folder/<prefix><random><suffix>``; returns its path and a write fd.

    The name cannot be something that already exists, a link included, so
    whatever is written lands in a file made here and now.
    """
    for _ in range(100):
        path = os.path.join(folder, f"{prefix}{random_token()}{suffix}")
        try:
            return path, os.open(path, _EXCLUSIVE, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", folder)


@contextmanager
def replacing(
    path: str, mode: str = "wb", *, durable: bool = False, encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Write the new content of ``path`` in the block; it takes the name when the block ends.

    ``mode`` is ``"w"`` (text) or ``"wb"``. With ``durable`` the file and then
    its folder are fsynced, so the new content survives a power cut once the
    block ends. If the block raises, the temporary file is removed and
    ``path`` is left as it was.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode={mode!r} must be 'w' or 'wb'")
    folder, name = os.path.split(path)
    tmp, fd = create_exclusive(folder or os.curdir, prefix=f".{name}.")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(folder or os.curdir)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename or a new entry in the folder ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
