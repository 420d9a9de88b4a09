"""The public API is typed: a type checker sees what the registries promise (tests/typing/)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "tests" / "typing" / "quickstart.py"


def test_the_readme_quickstart_is_the_type_checked_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert block is not None
    assert block.group(1) == QUICKSTART.read_text(encoding="utf-8")


def test_the_quickstart_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(QUICKSTART)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("hi 2.0 ['decoder_only'")
    assert done.stdout.splitlines()[1] == "1.0"


def test_the_package_ships_py_typed() -> None:
    import codex_ml

    assert (Path(codex_ml.__file__).parent / "py.typed").is_file()


def test_register_returns_the_factory_itself(isolated_registries: object) -> None:
    from codex_ml.registry import register_metric

    def build() -> object:
        return len

    assert register_metric("typed_x")(build) is build
    assert register_metric("typed_y", build) is build


def test_mypy_sees_the_factory_type_through_the_decorator(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from codex_ml.registry import get_tokenizer, register_model\n"
        "@register_model('typed_sample')\n"
        "def build(*, width: int = 2) -> list[int]:\n"
        "    return [0] * width\n"
        "build(width='wide')\n"
        "reveal_type(get_tokenizer('bytes'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(sample)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert 'Argument "width" to "build" has incompatible type "str"' in done.stdout, done.stdout
    assert 'Revealed type is "codex_ml.protocols.Tokenizer"' in done.stdout, done.stdout
