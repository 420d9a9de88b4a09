"""What a killed store build leaves behind, and clearing it on the next build.

A build writes into ``.<name>.building-<owner>-<random>/`` beside the store
and moves a store it replaces to ``.<name>.old-<owner>-<random>/``; both go
when the build ends, however it ends, unless the process is killed outright
(``SIGKILL``, a power cut). A store built from a source without a fingerprint
(a pipe: see ``fingerprint.is_unstable``) is *volatile*: removed when its
process exits, since no later run could ever use it. ``<owner>`` is
``<pid>@<host>``, also kept in a volatile store's mark, so the next build
removes what a dead process on this host left at once, and a temporary
folder older than a day whoever left it (no build takes that long).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import re
import shutil
import socket
import time
from pathlib import Path

from codex_ml.data.store.layout import in_default_root, read_marker

#: Leftovers this old are removed whoever left them.
STALE_SECONDS = 24 * 3600
#: ``.<name>.building-<pid>@<host>-<random>`` (or ``.old-``); mkdtemp's random part has no ``-``.
_OWNED = re.compile(r"^\..+\.(?:building|old)-(\d+)@(.+)-[a-z0-9_]+$")


def owner() -> str:
    """``<pid>@<host>``: who is building, in temporary names and a volatile store's mark."""
    return f"{os.getpid()}@{socket.gethostname()}"


def staging_prefix(folder: Path) -> str:
    """The name a build of ``folder`` writes into, up to its random part."""
    return f".{folder.name}.building-{owner()}-"


def aside_prefix(folder: Path) -> str:
    """The name a replaced store of ``folder`` waits under until the new one is in place."""
    return f".{folder.name}.old-{owner()}-"


def remove_at_exit(folder: Path) -> None:
    """Remove the volatile store ``folder`` when this process exits (normally or by an error)."""
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


def remove_leftovers(folder: Path) -> None:
    """Clear what killed builds left beside ``folder``; in the cache, of every store there.

    In the cache's ``tokens/`` everything is codex-ml's, volatile stores included;
    beside a ``data.store=`` folder only what builds of that folder left.
    """
    parent = folder.parent
    if not parent.is_dir():
        return
    cache = in_default_root(folder)
    name = "*" if cache else glob.escape(folder.name)
    for kind in ("building", "old"):
        for temp in parent.glob(f".{name}.{kind}-*"):
            match = _OWNED.match(temp.name)
            _remove_if_abandoned(temp, match.group(1, 2) if match else None, STALE_SECONDS)
    if cache:
        for store in parent.iterdir():
            mark = read_marker(store) if not store.name.startswith(".") else None
            volatile = (mark or {}).get("volatile")
            if isinstance(volatile, str) and "@" in volatile:
                pid, host = volatile.split("@", 1)
                _remove_if_abandoned(store, (pid, host), None)  # maybe mapped on another host


def _remove_if_abandoned(path: Path, who: tuple[str, str] | None, stale: float | None) -> None:
    """Remove ``path`` if its owner on this host is dead, or it is ``stale`` seconds old."""
    with contextlib.suppress(OSError, ValueError):
        if path.is_symlink() or not path.is_dir():
            return
        dead = who is not None and who[1] == socket.gethostname() and not _alive(int(who[0]))
        if dead or (stale is not None and path.stat().st_mtime < time.time() - stale):
            shutil.rmtree(path)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (another user's counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
