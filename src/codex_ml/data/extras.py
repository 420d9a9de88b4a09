"""Optional dependencies of the data loaders (the ``data`` extra), imported when used.

``import codex_ml.data`` and listing the loaders never import pyarrow or
datasets; a loader that needs one imports it through :func:`require`, which
turns a missing package into one paragraph naming the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: The install command for the extra that holds every optional data dependency.
INSTALL = 'pip install "codex-ml[data]"'


class MissingDependencyError(ImportError, ValueError):
    """An optional package a loader needs is not installed (a ``ValueError`` too, so the
    command line reports it as one paragraph the user can act on, not as a crash)."""


def require(module: str, *, loader: str) -> ModuleType:
    """Import ``module`` (``"pyarrow.parquet"``, ``"datasets"``) or explain how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise MissingDependencyError(
            f"the {loader!r} data loader needs the {package!r} package, which is not installed "
            f"({exc}). Install codex-ml's data extra: {INSTALL} (or pip install {package})."
        ) from exc
