"""Where the files the package ships live: configs, offline data, the project root.

From a checkout (editable install) they are the repository's own ``configs/``
and ``data/offline/``; from a wheel they are package data under
``codex_ml/_resources``. Both layouts resolve through the functions here, so
nothing else in the package hard-codes a path.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_BUNDLED = _PACKAGE_DIR / "_resources"


@cache
def checkout_root() -> Path | None:
    """The repository root when running from a source checkout, else ``None``."""
    root = _PACKAGE_DIR.parent.parent  # src/codex_ml -> repository root
    if (root / "pyproject.toml").is_file() and (root / "configs").is_dir():
        return root
    return None


def project_root() -> Path:
    """The directory that relative artefact paths (``artifacts/models/...``) start from.

    ``CODEX_ML_PROJECT_ROOT`` wins; then the source checkout; then the current
    working directory (an installed wheel has no repository of its own).
    """
    explicit = os.environ.get("CODEX_ML_PROJECT_ROOT")
    if explicit:
        return Path(explicit).expanduser()
    return checkout_root() or Path.cwd()


def _shipped(relative: str) -> Path:
    root = checkout_root()
    if root is not None and (root / relative).exists():
        return root / relative
    return _BUNDLED / relative


def configs_dir() -> Path:
    """The Hydra presets (``configs/``)."""
    return _shipped("configs")


def offline_data_dir() -> Path:
    """The offline data fixtures (``data/offline/``)."""
    return _shipped("data/offline")


def offline_file(filename: str, env: str) -> tuple[Path, str]:
    """A file of ``data/offline/``, unless the variable ``env`` names another one.

    Returns the path and where it came from (``env``'s name, or "the shipped
    default"), so that a missing file's error can say which setting to fix. The
    variables are the original codex-ml's (``CODEX_ML_TINY_CORPUS_PATH``, ...).
    """
    explicit = os.environ.get(env)
    if explicit:
        return Path(explicit).expanduser(), env
    return offline_data_dir() / filename, "the shipped default"
