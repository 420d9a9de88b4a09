"""Which files a data loader's ``path`` names: a file, a directory of shards, or a glob.

Every built-in loader resolves its ``path`` here, so all of them accept the
same three forms and read the files in the same (sorted) order, and the token
store can fingerprint exactly the files a loader read.
"""

from __future__ import annotations

import glob
import os
from os import PathLike
from pathlib import Path

_GLOB_CHARACTERS = ("*", "?", "[")


def resolve_files(
    path: str | PathLike[str], *, loader: str, suffixes: tuple[str, ...] = ()
) -> list[Path]:
    """The files ``path`` names, in sorted order; an error naming ``path`` if there are none.

    A directory contributes the files under it (recursively) whose names end
    in one of ``suffixes`` (any file when empty), skipping hidden files and
    ``_``-prefixed markers such as Spark's ``_SUCCESS``. Anything that exists
    and is not a directory counts as a file, so a FIFO or ``/dev/stdin`` can be
    read (and ``/dev/zero`` fails on its record size, not here).
    """
    if isinstance(path, bool) or not isinstance(path, (str, PathLike)):
        raise TypeError(
            f"the {loader!r} data loader needs path= a file, a directory of shards or a glob "
            f"(a str or Path), got {type(path).__name__}."
        )
    text = os.path.expanduser(os.fspath(path))
    if not Path(text).exists() and any(c in text for c in _GLOB_CHARACTERS):
        found = sorted(Path(p) for p in glob.glob(text, recursive=True) if not Path(p).is_dir())
        if not found:
            raise FileNotFoundError(
                f"no file matches {text} (data loader {loader!r}). Check the pattern, or pass "
                "path= a file or a directory of shards."
            )
        return found
    target = Path(text)
    if target.is_dir():
        found = sorted(
            p
            for p in target.rglob("*")
            if not p.is_dir()
            and not any(part.startswith((".", "_")) for part in p.relative_to(target).parts)
            and (not suffixes or p.name.lower().endswith(suffixes))
        )
        if not found:
            wanted = f" ending in {', '.join(suffixes)}" if suffixes else ""
            raise FileNotFoundError(
                f"{target} is a directory with no data files{wanted} in it (data loader "
                f"{loader!r}). Pass path= a file, a directory that holds the shards, or a glob "
                "such as 'shards/*.jsonl'."
            )
        return found
    if not target.exists():
        raise FileNotFoundError(
            f"data file not found: {target} (data loader {loader!r}). Pass path= an existing "
            "file, a directory of shards or a glob."
        )
    return [target]
