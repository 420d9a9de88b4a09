"""Fixtures for tests of the artefact-backed components (loaded with ``pytest_plugins``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_ml.artefacts import artefact_env_vars
from codex_ml.testing.artefacts import make_artefact_tree


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No artefact override from the outer shell may leak into a test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in [*artefact_env_vars(), "CODEX_ML_PROJECT_ROOT"]:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project root holding tiny ``artifacts/models/{gpt2,tinyllama}/``."""
    return make_artefact_tree(tmp_path_factory.mktemp("project"))
