"""Session fixtures of the CLI tests, loaded with ``pytest_plugins = ["cli_fixtures"]``.

They are made once however many test files use them: a training run takes
seconds even at tiny size, and the tiny Hugging Face artefacts about as long.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import TRAINED, Run, train


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One tiny run of 30 steps, with its progress bar on; shared by the CLI tests."""
    workdir = tmp_path_factory.mktemp("trained")
    return train(workdir / "run", *TRAINED, "run.progress=true")


@pytest.fixture(scope="session")
def artefact_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project root holding tiny ``artifacts/models/{gpt2,tinyllama}/`` (real HF files)."""
    from codex_ml.testing.artefacts import make_artefact_tree

    return make_artefact_tree(tmp_path_factory.mktemp("project"))
