"""`codex-ml generate` with sampling settings that mean nothing: one paragraph, exit 2."""

from __future__ import annotations

import pytest
from cli_helpers import Run, assert_user_error, codex_ml_cli

pytest_plugins = ["cli_fixtures"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1"])
def test_a_temperature_that_is_not_a_finite_number_is_a_user_error(
    trained_run: Run, value: str
) -> None:
    result = codex_ml_cli(
        "generate", str(trained_run.dir), "--prompt", "The", f"--temperature={value}",
        cwd=trained_run.dir.parent,
    )  # fmt: skip
    assert_user_error(result, "generate", "temperature must be a finite number >= 0")
