"""A model or tokenizer folder never runs its own code, and nothing is asked on stdin.

``auto_map`` in a folder's ``config.json`` or ``tokenizer_config.json`` makes
transformers import ``configuration_*.py`` / ``tokenization_*.py`` from the
folder (and, unless told ``trust_remote_code``, ask ``[y/N]`` on stdin). Such a
folder is refused before transformers sees it: one paragraph naming the file
and ``auto_map``, exit 2, even with a ``y`` waiting on stdin.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import QUICK, assert_user_error, cli_env

from codex_ml.testing.artefacts import make_tiny_gpt2

from . import report

#: Written by the folder's modules when (if ever) they are imported.
EVIL = "from pathlib import Path\nPath({marker!r}).write_text('ran')\n"


def _add_auto_map(folder: Path, file: str, entry: dict[str, object], module: str) -> Path:
    """Give ``folder/file`` an ``auto_map`` and ``module``.py that leaves a marker if it runs."""
    marker = folder.parent / f"{module}.ran"
    data = json.loads((folder / file).read_text())
    data["auto_map"] = entry
    (folder / file).write_text(json.dumps(data))
    (folder / f"{module}.py").write_text(EVIL.format(marker=str(marker)))
    return marker


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_gpt2(tmp_path_factory.mktemp("tiny") / "gpt2")


def _copy(tiny: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "folder"
    folder.mkdir()
    for path in tiny.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def _train(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``codex-ml train`` with ``y`` on stdin, as a user would answer transformers' prompt."""
    command = [
        sys.executable, "-m", "codex_ml.cli", "train", f"hydra.run.dir={tmp_path / 'run'}", *QUICK,
        *overrides,
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=tmp_path, env=cli_env(), input="y\ny\n", capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip


@pytest.mark.timeout(300)
@pytest.mark.parametrize("via", ["model", "tokenizer"])
def test_a_config_json_auto_map_is_refused_and_never_runs(
    via: str, tiny: Path, tmp_path: Path
) -> None:
    folder = _copy(tiny, tmp_path)
    marker = _add_auto_map(
        folder, "config.json", {"AutoConfig": "configuration_evil.EvilConfig"}, "configuration_evil"
    )
    option = "model.path" if via == "model" else "tokenizer.name_or_path"
    chosen = "model=offline/hf" if via == "model" else "tokenizer=offline/hf"
    result = _train(tmp_path, chosen, f"{option}={folder}")
    report.record("bad_inputs_tried")
    assert_user_error(result, "train", option, str(folder / "config.json"), "'auto_map'")
    assert "[y/N]" not in result.stdout + result.stderr
    assert not marker.exists()


@pytest.mark.timeout(300)
def test_a_tokenizer_config_auto_map_is_refused_and_never_runs(tiny: Path, tmp_path: Path) -> None:
    folder = _copy(tiny, tmp_path)
    marker = _add_auto_map(
        folder,
        "tokenizer_config.json",
        {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]},
        "tokenization_evil",
    )
    result = _train(tmp_path, "tokenizer=offline/hf", f"tokenizer.name_or_path={folder}")
    report.record("bad_inputs_tried")
    message = assert_user_error(
        result, "train", str(folder / "tokenizer_config.json"), "'auto_map'"
    )
    assert "tokenization_evil.py" in message
    assert "[y/N]" not in result.stdout + result.stderr
    assert not marker.exists()


def test_every_from_pretrained_says_trust_remote_code_false(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also where no folder is read first (a hub id from the cache): no prompt, no code."""
    from codex_ml.models import hf as models_hf
    from codex_ml.tokenizers import hf as tokenizers_hf

    seen: list[tuple[str, object]] = []

    def recording(auto: type) -> None:
        original = auto.from_pretrained

        def from_pretrained(*args: object, **kwargs: object) -> object:
            seen.append((auto.__name__, kwargs.get("trust_remote_code")))
            return original(*args, **kwargs)

        monkeypatch.setattr(auto, "from_pretrained", from_pretrained)

    for auto in (models_hf.AutoConfig, models_hf.AutoModelForCausalLM, tokenizers_hf.AutoTokenizer):
        recording(auto)
    with pytest.raises(FileNotFoundError, match="not in the Hugging Face cache"):
        tokenizers_hf.load_hf_tokenizer("someone/not-cached-tokenizer")
    tokenizers_hf.load_hf_tokenizer(tiny)
    models_hf.load_causal_lm(tiny)
    # transformers' own nested calls (AutoTokenizer reads the config) pass the flag on too.
    assert {name for name, _ in seen} == {"AutoTokenizer", "AutoConfig", "AutoModelForCausalLM"}
    assert all(trusted is False for _, trusted in seen), seen
