"""Publishing a folder whole: its name shows the complete old folder or the complete new one.

Checkpoints (``checkpoints/step-<N>/``) and token stores
(``tokens/<fingerprint>/``) are folders of several large files, written the
same way by :func:`publish_folder`:

1. a fresh private folder is made beside the target
   (:func:`codex_ml.fsio.make_temp_dir`: nothing can be planted in it);
2. the caller fills it;
3. a folder already at the target's name is moved aside under a hidden name,
   the new one renamed into place in one step, and the old one deleted only
   then.

Any failure on the way (a full disk, a bad record, Ctrl-C) deletes the
temporary folder and leaves the target's name as it was. When the disk is
the cause, :func:`write_failed_message` is the one paragraph that says so:
what could not be written where, what the library said, the space left, what
was kept, and what to do.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from codex_ml import atomicfile, fsio

#: What a full disk (or a quota, or a file-size limit) makes a write fail with.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class FileWriteFailed(Exception):
    """Writing one file of a folder failed: which one (``name``), and the library's error."""

    def __init__(self, name: str, cause: Exception) -> None:
        super().__init__(name)
        self.name = name
        self.cause = cause


@contextmanager
def writing(name: str) -> Iterator[None]:
    """Re-raise any failure in the block as :class:`FileWriteFailed` naming the file ``name``."""
    try:
        yield
    except Exception as exc:
        raise FileWriteFailed(name, exc) from exc


def publish_folder(
    target: Path,
    fill: Callable[[Path], None],
    *,
    staging_prefix: str,
    aside_prefix: str,
    keep_existing: Callable[[Path], bool] | None = None,
    durable: bool = True,
) -> bool:
    """Fill a fresh folder beside ``target`` and rename it to ``target``; True once published.

    ``fill(folder)`` writes the content. The temporary folder is named
    ``<staging_prefix><random>``; a folder already at ``target`` goes to
    ``<aside_prefix><random>/<target's name>`` until the new one is in place.
    ``keep_existing(target)``, asked when something is already there, may
    return True to keep it (another process published the same content
    first): the new folder is then dropped and the result is False. With
    ``durable`` the rename is fsynced and a failure to do so raised; without,
    it is fsynced where the filesystem allows. Whatever fails, the temporary
    folder is removed and the exception raised as it came.
    """
    staged: Path | None = None
    try:
        with _signals_held():  # a Ctrl-C or SIGTERM arrives once ``staged`` names the folder
            staged = fsio.make_temp_dir(target.parent, prefix=staging_prefix)
        fill(staged)
        published = _rename_into_place(staged, target, aside_prefix, keep_existing, durable)
    except BaseException:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
        raise
    if not published:
        shutil.rmtree(staged, ignore_errors=True)
    return published


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the block (where the platform can), then deliver them.

    Around the making of a temporary folder: a signal between its ``mkdir``
    and the assignment of its name would leave a folder nobody removes.
    """
    import signal

    held = {signal.SIGINT, signal.SIGTERM}
    block = getattr(signal, "pthread_sigmask", None)
    if block is None:
        yield
        return
    previous = block(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        block(signal.SIG_SETMASK, previous)


def _rename_into_place(
    staged: Path,
    target: Path,
    aside_prefix: str,
    keep_existing: Callable[[Path], bool] | None,
    durable: bool,
) -> bool:
    for attempt in (1, 2):
        aside = None
        if os.path.lexists(target):
            if keep_existing is not None and keep_existing(target):
                return False
            aside = move_aside(target, aside_prefix)
        try:
            os.rename(staged, target)
            break
        except OSError as exc:
            if aside is not None:  # put the old one back: the name is never left empty
                with suppress(OSError):
                    os.rename(aside / target.name, target)
            if attempt == 2 or exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            # Another process published at the name between the two steps: look again.
    if durable:
        atomicfile.fsync_dir(target.parent)
    else:
        with suppress(OSError):
            atomicfile.fsync_dir(target.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return True


def move_aside(path: Path, prefix: str) -> Path:
    """Rename ``path`` into a fresh hidden folder ``<prefix><random>`` beside it; returns that.

    Deleting the returned folder takes as long as it takes: a half-deleted
    folder never sits at a name that a reader would look at.
    """
    aside = fsio.make_temp_dir(path.parent, prefix=prefix)
    os.rename(path, aside / path.name)
    return aside


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write refused for lack of space (or quota, or a file-size limit)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def describe_failure(exc: BaseException) -> str:
    """One line for what failed: ``writing <file> failed with <cause>``, or the cause alone.

    The cause is the ``strerror`` and errno of an ``OSError``, else the first
    line of the library's message (torch's and safetensors' run long).
    """
    if isinstance(exc, FileWriteFailed):
        return f"writing {exc.name} failed with {describe_failure(exc.cause)}"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{os.strerror(exc.errno)} (errno {exc.errno})"
    first = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def space_left(folder: Path) -> str:
    """``"<n> MiB free there now"`` for the disk holding ``folder``."""
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:,.1f} MiB free there now"
    except OSError:
        return "its free space could not be read"


def write_failed_message(
    what: str, exc: BaseException, *, disk: Path, kept: str, remedy: str
) -> str:
    """The one paragraph for a folder that could not be written, most likely for a full disk.

    ``what`` names the folder (``"Could not write checkpoint step-4 in
    runs/a/checkpoints"``), ``disk`` a folder on the disk at fault, ``kept``
    says what is intact (the previous folder) and ``remedy`` what to do.
    """
    return (
        f"{what}: {describe_failure(exc)}. This usually means the disk is full or over quota "
        f"({space_left(disk)}). {kept} {remedy}"
    )
