"""A bare virtual environment that holds only codex-ml and the baselines' libraries.

The project's virtualenv also holds the example plugins under ``plugins/``:
two of them are hook plugins (one broken on purpose), which every codex-ml
listing imports, with pluggy. Discovery at scale measures what each tool pays
for N installed component distributions, so its processes run in this
environment instead: codex-ml (the package this benchmark imports), pluggy,
stevedore and catalogue, linked from the running environment, and nothing
else. Every tool, baselines included, runs in the same one.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

#: What the discovery probes import: the baselines, and codex-ml's one runtime dependency.
DISTRIBUTIONS = ("pluggy", "stevedore", "catalogue")


def make(folder: Path, distributions: Sequence[str] = DISTRIBUTIONS) -> str:
    """Create the environment in ``folder`` (once) and return its Python interpreter."""
    python = folder / "bin" / "python"
    if python.exists():
        return str(python)
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)],
        check=True,
        capture_output=True,
    )
    site = _site_packages(python)
    for name in distributions:
        _link_distribution(importlib.metadata.distribution(name), site)
    _link_codex_ml(site)
    # As an environment installed earlier would be: codex-ml does not trust (or save)
    # a discovery index that read a folder modified in the last two seconds.
    an_hour_ago = time.time() - 3600
    os.utime(site, (an_hour_ago, an_hour_ago))
    return str(python)


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def _link_distribution(
    dist: importlib.metadata.Distribution, site: Path, *, metadata_only: bool = False
) -> None:
    """Link a distribution's top-level packages and its ``.dist-info`` folder into ``site``."""
    tops = {
        file.parts[0]
        for file in dist.files or ()
        if file.parts[0] not in ("..", "__pycache__") and not file.parts[0].endswith(".pth")
    }
    if metadata_only:
        tops = {top for top in tops if top.endswith(".dist-info")}
    for top in sorted(tops):
        target = Path(dist.locate_file(top))
        if target.exists() and not (site / top).exists():
            os.symlink(target, site / top)


def _link_codex_ml(site: Path) -> None:
    """codex-ml's metadata, and its package where this process imports it from.

    (An editable install's files are a ``.pth`` and, here, a resources folder
    named like the package; the package itself is in the checkout.)
    """
    import codex_ml

    _link_distribution(importlib.metadata.distribution("codex-ml"), site, metadata_only=True)
    os.symlink(Path(codex_ml.__file__).resolve().parent, site / "codex_ml")
