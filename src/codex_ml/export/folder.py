"""Where an export lands: never half a folder, never over one without ``--force``.

Everything is written into a private temporary folder beside ``--out`` and
renamed into place only once it is complete and verified
(:func:`codex_ml.publish.publish_folder`, as checkpoints and token stores
are); an existing folder given with ``--force`` is moved aside first and
deleted only after the new one is in place.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

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


def publish(out: Path, fill: Callable[[Path], None], *, force: bool) -> None:
    """Fill a fresh folder beside ``out`` and rename it to ``out`` (the one folder publish).

    ``out`` is checked again when the folder is complete: it may have changed
    while the export ran.
    """
    from codex_ml.publish import publish_folder

    def filled(staging: Path) -> None:
        fill(staging)
        share(staging)

    def refuse_unless_forced(existing: Path) -> bool:
        check_target(existing, force=force)
        return False  # never keep it: an empty folder or --force is replaced

    out.parent.mkdir(parents=True, exist_ok=True)
    publish_folder(
        out,
        filled,
        staging_prefix=f".{out.name}.export-",
        aside_prefix=f".{out.name}.replaced-",
        keep_existing=refuse_unless_forced,
    )


def share(folder: Path) -> None:
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
