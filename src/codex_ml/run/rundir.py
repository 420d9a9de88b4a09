"""A run owns its directory: a name no other run has, and a lock while it runs.

Two runs that wrote to one directory mixed their summaries and deleted each
other's checkpoints. The default name (``runs/<timestamp>``) is made unique by
creating it exclusively, with ``-2``, ``-3``... when another run took it in the
same second; a directory the user names is shared on purpose (a rerun), so
there the lock alone keeps a second live run out. A start that fails before
its first step leaves nothing behind, so "the newest run" is never a failure.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from codex_ml import runfiles
from codex_ml.config import ConfigError

#: The lock file inside a run directory; it holds the pid of the run that owns it.
LOCK_NAME = runfiles.LOCK


class RunDirectoryBusy(ConfigError):
    """Another live process owns the run directory."""


@dataclass
class RunDirectory:
    """A claimed run directory; ``created`` when this process made it."""

    path: Path
    created: bool
    _lock_fd: int | None = None

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race a waiting run)."""
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)
            self._lock_fd = None

    def holds_no_step(self) -> bool:
        """No training step was recorded in it: a failed start, not a failed run."""
        metrics = self.path / runfiles.METRICS
        return not metrics.is_file() or metrics.is_symlink() or metrics.stat().st_size == 0


def create_unique(path: Path) -> Path:
    """Create ``path`` exclusively, or ``path-2``, ``path-3``... when it is taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 10_000):
        candidate = path if attempt == 1 else path.with_name(f"{path.name}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise ConfigError(f"{path}: no free run directory name after 9,999 tries.", where="run dir")


def _lock(path: Path) -> int:
    """An exclusive lock on ``path/.lock`` with our pid in it; raises :class:`RunDirectoryBusy`."""
    lock_file = path / LOCK_NAME
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(lock_file, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(
                f"{lock_file} is a symbolic link; codex-ml never writes through a link in a run "
                f"directory. Remove it, or choose another run directory.",
                where="hydra.run.dir",
            ) from None
        raise
    if not _try_flock(fd):
        holder = _read_pid(fd)
        os.close(fd)
        raise RunDirectoryBusy(
            f"{path} is in use by another codex-ml run (pid {holder}); two runs in one directory "
            f"would overwrite each other's checkpoints and summary. Wait for it to end, or give "
            f"this run its own directory (hydra.run.dir=...).",
            where="hydra.run.dir",
        )
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _try_flock(fd: int) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_pid(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return text if text.isdigit() else "unknown"


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or in it (a run resumed in place)."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def check_not_in_use(target: Path) -> None:
    """Refuse to read a run (``training.resume``) that a live process is still writing."""
    for folder in (target, *list(target.parents)[:3]):
        lock_file = folder / LOCK_NAME
        if not lock_file.is_file() or lock_file.is_symlink():
            continue
        fd = os.open(lock_file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            if not _try_flock(fd):
                raise RunDirectoryBusy(
                    f"{folder} is still being written by a live codex-ml run (pid "
                    f"{_read_pid(fd)}); resume it once that run has ended.",
                    where="training.resume",
                )
        finally:
            os.close(fd)  # closing drops any lock this probe took
        return


def claim(path: Path, *, unique: bool) -> RunDirectory:
    """Create (``unique``: under a fresh name) and lock the run directory."""
    path = path.expanduser().absolute()  # printed and recorded as Hydra did: absolute
    if unique:
        path, created = create_unique(path), True
    else:
        created = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
    try:
        fd = _lock(path)
    except BaseException:
        if created:
            _remove_if_empty(path)
        raise
    return RunDirectory(path, created, fd)


def _remove_if_empty(path: Path) -> None:
    lock_file = path / LOCK_NAME
    try:
        if lock_file.is_file() and not lock_file.is_symlink():
            lock_file.unlink()
        path.rmdir()
    except OSError:
        pass  # something else is in it now: leave it


@contextmanager
def owned(path: Path, *, unique: bool) -> Iterator[RunDirectory]:
    """Hold the run directory for the block; remove it again if the run failed to start.

    Only a directory this process created is removed, and only when no step was
    recorded in it: what it holds then is this run's config and nothing more.
    """
    run_dir = claim(path, unique=unique)
    try:
        yield run_dir
    except BaseException:
        if run_dir.created and run_dir.holds_no_step():
            import shutil

            shutil.rmtree(run_dir.path, ignore_errors=True)  # rmtree never follows links
        raise
    finally:
        run_dir.release()
