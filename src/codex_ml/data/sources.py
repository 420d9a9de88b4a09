"""Which files a data loader's ``path`` names (a file, a directory or a glob), and which it skipped.

Every built-in loader resolves its ``path`` here, so all of them accept the
same three forms and read the files in the same (sorted) order, and the token
store can fingerprint exactly the files a loader read. A file passed over is
never passed over silently: :class:`FileSet` counts it under its reason
(:data:`SKIP_REASONS`), and ``codex-ml prepare``/``train`` print the counts.

What is skipped: hidden files and anything under a hidden folder (a path part
that starts with ``.``, inside a directory), files whose name is exactly a
marker of a folder of shards (:data:`MARKER_NAMES`; ``__init__.py`` or
``_part.txt`` are files like any other), files an ``exclude`` glob matches,
and, in a directory, files without one of ``suffixes``. A glob is taken as
written: its matches are filtered by markers and ``exclude`` only.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import overload

_GLOB_CHARACTERS = ("*", "?", "[")

#: Names that mark a folder of shards (Spark's, Hadoop's, a Parquet dataset's) and hold no data.
MARKER_NAMES = frozenset({"_SUCCESS", "_metadata", "_common_metadata"})

#: Why a file is skipped (the keys of ``skipped_files``), and the words the console says it with.
SKIP_REASONS: Mapping[str, str] = {
    "hidden": "hidden",
    "marker": "marker",
    "excluded": "excluded",
    "suffix": "wrong suffix",
    "empty": "empty",
    "too_large": "over max_record_bytes",
    "not_utf8": "not UTF-8",
    "binary": "binary",
}


@dataclass(frozen=True)
class FileSet(Sequence[Path]):
    """The files a ``path`` names, in order, and how many it passed over by reason.

    A sequence of its ``files``, so a caller that wants only the paths can
    index and iterate it as before.
    """

    files: tuple[Path, ...]
    skipped: Mapping[str, int] = field(default_factory=dict)

    @overload
    def __getitem__(self, index: int) -> Path: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Path]: ...
    def __getitem__(self, index: int | slice) -> Path | Sequence[Path]:
        return self.files[index]

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Path]:
        return iter(self.files)


def add_counts(*counts: Mapping[str, int]) -> dict[str, int]:
    """Skip counts added up by reason, in :data:`SKIP_REASONS` order, zeros left out."""
    total: dict[str, int] = {}
    for each in counts:
        for reason, count in each.items():
            total[reason] = total.get(reason, 0) + int(count)
    order = list(SKIP_REASONS)
    ranked = sorted(total, key=lambda r: (order.index(r) if r in order else len(order), r))
    return {reason: total[reason] for reason in ranked if total[reason]}


def skipped_phrase(counts: Mapping[str, int]) -> str:
    """``"skipped 5 files (3 hidden, 2 marker)"``, or ``""`` when nothing was skipped."""
    counts = add_counts(counts)
    total = sum(counts.values())
    if not total:
        return ""
    parts = ", ".join(f"{n:,} {SKIP_REASONS.get(reason, reason)}" for reason, n in counts.items())
    return f"skipped {total:,} file{'s' if total != 1 else ''} ({parts})"


def check_patterns(value: object, name: str) -> tuple[str, ...]:
    """A list of strings (or one string) as a tuple, or a ValueError naming ``name``."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        items = tuple(value)
        if all(isinstance(item, str) and item.strip() for item in items):
            return items
    raise ValueError(
        f"{name} must be a list of non-empty strings (data.{name}=[...]), got {value!r}."
    )


def resolve_files(
    path: str | PathLike[str],
    *,
    loader: str,
    suffixes: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> FileSet:
    """The files ``path`` names, in sorted order; an error naming ``path`` if there are none.

    A directory contributes the files under it (recursively) whose names end
    in one of ``suffixes`` (any file when empty); ``exclude`` globs match
    paths relative to the directory (or the fixed start of a glob) and skip a
    file they match or a folder it is in. Anything that exists and is not a
    directory counts as a file, so a FIFO or ``/dev/stdin`` can be read (and
    ``/dev/zero`` fails on its record size, not here).
    """
    if isinstance(path, bool) or not isinstance(path, (str, PathLike)):
        raise TypeError(
            f"the {loader!r} data loader needs path= a file, a directory of shards or a glob "
            f"(a str or Path), got {type(path).__name__}."
        )
    text = os.path.expanduser(os.fspath(path))
    endings = tuple(s.lower() for s in suffixes)
    excluded = [_pattern(p) for p in exclude]
    if not Path(text).exists() and any(c in text for c in _GLOB_CHARACTERS):
        matches = (Path(p) for p in glob.glob(text, recursive=True) if not Path(p).is_dir())
        found = _sorted_out(matches, _glob_root(text), excluded, endings, walked=False)
        if not found:
            raise FileNotFoundError(
                f"no file matches {text} (data loader {loader!r}){_also(found)}. Check the "
                "pattern, or pass path= a file or a directory of shards."
            )
        return found
    target = Path(text)
    if target.is_dir():
        walked = (p for p in target.rglob("*") if not p.is_dir())
        found = _sorted_out(walked, target, excluded, endings, walked=True)
        if not found:
            wanted = f" ending in {', '.join(suffixes)}" if suffixes else ""
            raise FileNotFoundError(
                f"{target} is a directory with no data files{wanted} in it (data loader "
                f"{loader!r}){_also(found)}. Pass path= a file, a directory that holds the "
                "shards, or a glob such as 'shards/*.jsonl'."
            )
        return found
    if not target.exists():
        raise FileNotFoundError(
            f"data file not found: {target} (data loader {loader!r}). Pass path= an existing "
            "file, a directory of shards or a glob."
        )
    return FileSet((target,))


def _sorted_out(
    paths: Iterable[Path],
    root: Path,
    excluded: list[re.Pattern[str]],
    endings: tuple[str, ...],
    *,
    walked: bool,
) -> FileSet:
    """``paths`` kept or counted under why not (a glob's matches: markers and ``exclude`` only)."""
    kept: list[Path] = []
    skipped: dict[str, int] = {}
    for file in paths:
        reason = _skip_reason(file, root, excluded, endings, walked=walked)
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
        else:
            kept.append(file)
    return FileSet(tuple(sorted(kept)), add_counts(skipped))


def _skip_reason(
    file: Path,
    root: Path,
    excluded: list[re.Pattern[str]],
    endings: tuple[str, ...],
    *,
    walked: bool,
) -> str | None:
    try:
        parts = file.relative_to(root).parts
    except ValueError:
        parts = file.parts
    if walked and any(part.startswith(".") for part in parts):
        return "hidden"
    if file.name in MARKER_NAMES:
        return "marker"
    ancestry = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    if any(pattern.fullmatch(where) for pattern in excluded for where in ancestry):
        return "excluded"
    if walked and endings and not file.name.lower().endswith(endings):
        return "suffix"
    return None


def _also(found: FileSet) -> str:
    phrase = skipped_phrase(found.skipped)
    return f"; {phrase}" if phrase else ""


def _glob_root(pattern: str) -> Path:
    """The folder a glob starts in: its parts before the first one with a wildcard."""
    parts = Path(pattern).parts
    fixed = next((i for i, p in enumerate(parts) if any(c in p for c in _GLOB_CHARACTERS)), 0)
    return Path(*parts[:fixed]) if fixed else Path()


def _pattern(text: str) -> re.Pattern[str]:
    """An ``exclude`` glob as a regex over ``/``-joined relative paths.

    ``*`` and ``?`` stay within one folder, ``**`` spans folders (``**/`` also
    none), ``[...]`` is a class; a pattern without ``/`` (but at its end) matches a name at
    any depth, as in ``.gitignore``.
    """
    anchored = "/" in text.strip().rstrip("/")
    text = text.strip().strip("/")
    if not anchored:
        text = f"**/{text}"
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif text.startswith("**", i):
            out.append(".*")
            i += 2
        elif text[i] == "*":
            out.append("[^/]*")
            i += 1
        elif text[i] == "?":
            out.append("[^/]")
            i += 1
        elif text[i] == "[" and (close := text.find("]", i + 2)) != -1:
            body = text[i + 1 : close]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = close + 1
        else:
            out.append(re.escape(text[i]))
            i += 1
    return re.compile("".join(out))
