"""The test suite's environment, and helpers for tests that need real plugins.

The environment is fixed here, at import, before anything discovers plugins:

- the deliberately broken example plugin (``codex-ml-broken-plugin``) is
  blocked, so that a fault only appears in the tests that ask for it through
  the ``broken_plugin`` fixture;
- third-party autoload is on, whatever the caller's shell says;
- the discovery index goes to a throw-away directory, never the user's cache;
- the Hugging Face hub is offline.

Subprocesses started by the tests inherit all of this.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

#: The example distribution that fails on purpose (see plugins/codex-ml-broken-plugin).
BROKEN_DISTRIBUTION = "codex-ml-broken-plugin"


def _blocked_with_broken(current: str) -> str:
    names = [name.strip() for name in current.split(",") if name.strip()]
    return ",".join([*names, BROKEN_DISTRIBUTION] if BROKEN_DISTRIBUTION not in names else names)


os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("CODEX_ML_DISABLE_PLUGIN_AUTOLOAD", None)
os.environ.pop("CODEX_ML_DISCOVERY_CACHE", None)
os.environ["CODEX_ML_BLOCK_PLUGINS"] = _blocked_with_broken(
    os.environ.get("CODEX_ML_BLOCK_PLUGINS", "")
)
_SESSION_CACHE = tempfile.mkdtemp(prefix="codex-ml-test-cache-")
os.environ["CODEX_ML_CACHE_DIR"] = _SESSION_CACHE
atexit.register(shutil.rmtree, _SESSION_CACHE, ignore_errors=True)

if "codex_ml.registry" in sys.modules:  # something imported it before us: make it see the above
    sys.modules["codex_ml.registry"].reload()


@pytest.fixture
def broken_plugin() -> Iterator[None]:
    """Unblock ``codex-ml-broken-plugin`` for one test (in this process and its subprocesses)."""
    from codex_ml.registry import reload

    saved = os.environ["CODEX_ML_BLOCK_PLUGINS"]
    remaining = [n for n in saved.split(",") if n.strip() and n.strip() != BROKEN_DISTRIBUTION]
    os.environ["CODEX_ML_BLOCK_PLUGINS"] = ",".join(remaining)
    reload()
    try:
        yield
    finally:
        os.environ["CODEX_ML_BLOCK_PLUGINS"] = saved
        reload()


RunPython = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def run_python(tmp_path: Path) -> RunPython:
    """Run a Python snippet in a fresh interpreter; fail the test if it exits non-zero.

    ``env`` overrides variables (``None`` removes one); ``sys_path`` is put in
    front of ``sys.path`` before the snippet runs; ``cwd`` defaults to a fresh
    empty directory, so the current directory adds nothing to ``sys.path``; a
    snippet still running after ``timeout`` seconds fails the test.
    """

    def run(
        code: str,
        *,
        env: Mapping[str, str | None] | None = None,
        sys_path: Sequence[os.PathLike[str] | str] = (),
        cwd: os.PathLike[str] | str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess:
        prelude = f"import sys\nsys.path[:0] = {[str(p) for p in sys_path]!r}\n"
        environ = dict(os.environ)
        for name, value in (env or {}).items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        if cwd is None:
            cwd = tmp_path / "cwd"
            cwd.mkdir(exist_ok=True)
        try:
            result = subprocess.run(
                [sys.executable, "-c", prelude + textwrap.dedent(code)],
                capture_output=True,
                text=True,
                env=environ,
                cwd=cwd,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"subprocess still running after {timeout} s (a deadlock?)\n{exc.stderr or ''}"
            )
        if check and result.returncode != 0:
            pytest.fail(
                f"subprocess exited {result.returncode}\n--- stdout\n{result.stdout}"
                f"\n--- stderr\n{result.stderr}"
            )
        return result

    return run


def write_distribution(
    directory: Path,
    name: str,
    version: str = "1.0",
    *,
    entry_points: Mapping[str, Mapping[str, str]] | None = None,
    modules: Mapping[str, str] | None = None,
    metadata: str = "dist-info",
) -> Path:
    """Install a distribution by hand: its metadata folder and modules in ``directory``.

    ``metadata`` is ``"dist-info"`` (what pip writes) or ``"egg-info"`` (what
    ``setup.py develop`` leaves in a source tree). Returns the metadata folder.
    """
    directory.mkdir(parents=True, exist_ok=True)
    stem = name.replace("-", "_")
    if metadata == "dist-info":
        meta = directory / f"{stem}-{version}.dist-info"
        header = "METADATA"
    else:
        meta = directory / f"{stem}.egg-info"
        header = "PKG-INFO"
    meta.mkdir()
    (meta / header).write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
    sections = [
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in entries.items())
        for group, entries in (entry_points or {}).items()
    ]
    (meta / "entry_points.txt").write_text("\n".join(sections))
    for module, source in (modules or {}).items():
        (directory / f"{module}.py").write_text(textwrap.dedent(source))
    return meta


@pytest.fixture
def make_distribution() -> Callable[..., Path]:
    """:func:`write_distribution`, for tests that install fake distributions."""
    return write_distribution


@pytest.fixture
def on_sys_path() -> Iterator[Callable[..., None]]:
    """Put folders in front of ``sys.path`` in this process and rescan; undo it all afterwards."""
    import importlib

    from codex_ml.registry import reload

    added: list[str] = []

    def prepend(*folders: Path) -> None:
        for folder in reversed(folders):
            sys.path.insert(0, str(folder))
            added.append(str(folder))
        importlib.invalidate_caches()
        reload()

    yield prepend
    for folder in added:
        sys.path.remove(folder)
        for name, module in list(sys.modules.items()):
            if (getattr(module, "__file__", None) or "").startswith(folder):
                del sys.modules[name]
    if added:
        reload()
