"""Where an export lands: never half a folder, never over one without ``--force``.

Everything is written into a private temporary folder beside ``--out`` and
renamed into place only once it is complete and verified; an existing folder
given with ``--force`` is moved aside first and deleted only after the new
one is in place.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from codex_ml import atomicfile, fsio
from codex_ml.export.errors import ExportError


def check_target(out: Path, *, force: bool) -> None:
    """Refuse ``out`` when it is not empty (unless ``force``) or not a folder at all."""
    if out.is_symlink() and not force:
        raise ExportError(
            f"--out {out} is a symbolic link; export will not write through it. Nothing was "
            "touched. Give a new folder, or --force to replace the link (not what it points to)."
        )
    if out.is_symlink() or not out.exists():
        return
    if not out.is_dir():
        raise ExportError(
            f"--out {out} exists and is not a folder; nothing was touched. Give a new folder."
        )
    if not force and any(out.iterdir()):
        raise ExportError(
            f"--out {out} is not empty; nothing was touched. Give a new or empty folder, or "
            "add --force to replace it (it is replaced only once the new export is complete)."
        )


@contextmanager
def staging_folder(out: Path) -> Iterator[Path]:
    """A fresh folder beside ``out`` to write into; removed if anything in the block fails."""
    staging = fsio.make_temp_dir(out.parent, prefix=f".{out.name}.export-")
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def put_in_place(staging: Path, out: Path, *, force: bool) -> None:
    """Rename the complete ``staging`` folder to ``out``, replacing it only with ``force``."""
    check_target(out, force=force)  # it may have changed while the export ran
    aside = None
    if out.is_symlink() or (out.is_dir() and any(out.iterdir())):
        aside = fsio.make_temp_dir(out.parent, prefix=f".{out.name}.replaced-") / out.name
        os.rename(out, aside)
    try:
        os.rename(staging, out)  # replaces an empty folder in one step
    except BaseException:
        if aside is not None:
            os.rename(aside, out)
        raise
    _share(out)
    atomicfile.fsync_dir(out.parent)
    if aside is not None:
        _remove(aside.parent)


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)  # a link inside is unlinked, never followed


def _share(folder: Path) -> None:
    """Usual permissions: the staging folder was private (0700), and some writers make 0600."""
    mask = _umask()
    os.chmod(folder, 0o777 & ~mask)
    for path in folder.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
