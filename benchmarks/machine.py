"""The machine and the versions a run measured, for the report's header."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from importlib import metadata

from benchmarks.measure import REPO_ROOT

PACKAGES = ("codex-ml", "pluggy", "stevedore", "catalogue", "torch", "transformers", "accelerate")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> str:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return "?"
    return f"{pages * size / 2**30:.0f}"


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "?"
    return done.stdout.strip() or "?"


def describe() -> dict[str, str]:
    """Machine, OS, Python and package versions, as strings."""
    info = {
        "cpu": f"{_cpu_model()}, {os.cpu_count()} logical cores",
        "memory": f"{_memory_gib()} GiB",
        "os": platform.platform(),
        "python": f"{platform.python_version()} ({sys.executable})",
        "commit": _commit(),
    }
    for name in PACKAGES:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = "not installed"
    with contextlib.suppress(OSError):
        info["load average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info
