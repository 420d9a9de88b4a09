"""codex-ml's cache folder: what it keeps between processes, and where.

``$CODEX_ML_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/codex-ml``, else
``~/.cache/codex-ml``. It holds the discovery index
(``discovery-<hash>.marshal``, :mod:`codex_ml.plugins.discovery`) and the token
stores (``tokens/<fingerprint>/``, :mod:`codex_ml.data.store`); deleting it
costs only the time to rebuild them.

A leaf: it imports nothing of codex_ml and nothing but ``os``, because every
process start looks up the discovery index, and there plain strings are
cheaper than importing ``pathlib``.
"""

from __future__ import annotations

import os

#: The environment variable that moves the cache folder.
CACHE_DIR_VARIABLE = "CODEX_ML_CACHE_DIR"


def cache_folder() -> str:
    """The cache folder's path (``~`` expanded); it may not exist yet."""
    explicit = os.environ.get(CACHE_DIR_VARIABLE)
    if explicit:
        return os.path.expanduser(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "codex-ml")
