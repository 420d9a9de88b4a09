"""What a token store is a function of: the tokenizer, the data and the split.

Two fingerprints make the store's name (``tokens/<fingerprint>/``):

- the tokenizer's: a tokenizer's own ``fingerprint()`` if it has one (the hook
  for plugin tokenizers whose state is not in their attributes); for a
  Hugging Face fast tokenizer, a hash of its full serialisation (vocabulary,
  merges, normaliser, ...); otherwise its class and its plain attributes;
- the data's: the loader key and kwargs, and the resolved path, size and
  modification time of every file it reads (the files a built-in loader
  resolved, or any kwarg that names an existing path). A pipe or a device
  has no such fingerprint: it gets a new one on every run (:func:`file_stats`).

Together with the split settings and the store format they give one digest;
any change gives another name, so a stale store is never even looked at.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: Bumped when the files of a store change shape; old stores are then rebuilt.
FORMAT = 2
_PLAIN = (str, int, float, bool, type(None))
#: In place of a size: a source whose content no size and time can vouch for (a pipe).
UNSTABLE = "unstable"


def digest(value: Any, length: int = 24) -> str:
    """A short, stable hex digest of JSON-able ``value``."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def tokenizer_fingerprint(tokenizer: Any) -> dict[str, Any]:
    """What the ids of ``tokenizer`` depend on (see the module docstring)."""
    kind = f"{type(tokenizer).__module__}:{type(tokenizer).__qualname__}"
    common = {
        "class": kind,
        "vocab_size": int(tokenizer.vocab_size),
        "eos_id": int(tokenizer.eos_id),
    }
    own = getattr(tokenizer, "fingerprint", None)
    if callable(own):
        return {**common, "own": str(own())}
    backend = getattr(getattr(tokenizer, "hf_tokenizer", None), "backend_tokenizer", None)
    state = {k: v for k, v in sorted(vars(tokenizer).items()) if isinstance(v, _PLAIN)}
    if backend is not None:
        serialised = backend.to_str().encode("utf-8")
        return {**common, "state": state, "backend": hashlib.sha256(serialised).hexdigest()}
    return {**common, "state": state}


def file_stats(files: Iterable[Path]) -> list[list[Any]]:
    """``[resolved path, size, mtime_ns]`` of each file; an unstable one gets a fresh nonce.

    A named pipe, ``/dev/fd/N`` (``data.path=<(...)``), ``/dev/stdin``, a
    device or a file that reports no size but has content (``/proc``) has no
    size and time that say what it holds: ``[path, UNSTABLE, nonce]`` makes
    the fingerprint new on every run, so its store is built afresh
    (:func:`is_unstable`). A truly empty file (an ``__init__.py``) is stable.
    """
    stats: list[list[Any]] = []
    for file in files:
        path = Path(file)
        info = os.stat(path)  # through links: /dev/fd/N is one to the pipe
        if stat.S_ISREG(info.st_mode) and (info.st_size > 0 or _truly_empty(path)):
            stats.append([str(path.resolve()), info.st_size, info.st_mtime_ns])
        else:
            stats.append([str(path.absolute()), UNSTABLE, _nonce()])
    return stats


def _truly_empty(path: Path) -> bool:
    """Whether a file that reports size 0 gives nothing when read (``/proc`` files do)."""
    try:
        with open(path, "rb") as handle:
            return not handle.read(1)
    except OSError:
        return False


def _nonce() -> str:
    """New on every run, and the same on every process of one torchrun launch."""
    launch = os.environ.get("TORCHELASTIC_RUN_ID")
    if launch:
        return f"launch {launch} {os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
    return os.urandom(8).hex()


def is_unstable(meta: Mapping[str, Any]) -> bool:
    """Whether a store's ``meta`` (see ``run.prepare``) names a source without a fingerprint."""
    data = meta.get("data")
    sources = data.values() if isinstance(data, Mapping) else ()
    return any(
        isinstance(entry, list) and len(entry) == 3 and entry[1] == UNSTABLE
        for source in sources
        if isinstance(source, Mapping)
        for entry in source.get("files") or ()
    )


def files_in_kwargs(kwargs: Mapping[str, Any]) -> list[Path]:
    """Existing files named by string kwargs (a third-party loader's ``path=``, say)."""
    found: list[Path] = []
    for value in kwargs.values():
        if not isinstance(value, str) or not value or "\n" in value:
            continue
        path = Path(os.path.expanduser(value))
        try:
            if path.is_file():
                found.append(path)
            elif path.is_dir():
                found.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        except OSError:
            continue
    return found


def data_fingerprint(
    loader: str, kwargs: Mapping[str, Any], files: Iterable[Path], provider: str = ""
) -> dict[str, Any]:
    """What the records depend on: loader key (and who provides it), kwargs, the files' stats."""
    return {
        "loader": loader,
        "provider": provider,
        "kwargs": json.loads(json.dumps(dict(kwargs), sort_keys=True, default=str)),
        "files": file_stats(files),
    }
