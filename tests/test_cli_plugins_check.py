"""codex-ml plugins check and plugins show --preset, as a plugin author uses them."""

from __future__ import annotations

from pathlib import Path

import yaml
from cli_helpers import assert_user_error, codex_ml_cli, describe


def test_check_without_names_checks_every_third_party_key(tmp_path: Path, broken_plugin) -> None:
    result = codex_ml_cli("plugins", "check", cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert any(line.startswith("pass  tokenizer toy_whitespace") for line in lines), describe(
        result
    )
    assert any(line.startswith("pass  callback toy_loss_printer") for line in lines)
    assert any(line.startswith("skip  trainer toy_trainer") for line in lines)
    # the broken distribution's metric cannot even load: a failure, so the exit is 1
    assert any(line.startswith("FAIL  metric broken_metric: RegistryLoadError") for line in lines)
    assert not any(" ppl" in line for line in lines)  # built-in keys are not checked by default
    assert result.returncode == 1, describe(result)


def test_check_of_named_keys_passes_or_needs_arguments(tmp_path: Path) -> None:
    result = codex_ml_cli(
        "plugins", "check", "metric", "toy_metric", "data_loader", "lines", cwd=tmp_path
    )
    assert result.returncode == 0, describe(result)
    assert "pass  metric toy_metric" in result.stdout
    assert "needs data_loader lines" in result.stdout
    assert "--kwargs '{\"path\": ...}'" in result.stdout
    corpus = tmp_path / "c.txt"
    corpus.write_text("one line\nanother line\n")
    given = codex_ml_cli(
        "plugins",
        "check",
        "data_loader",
        "lines",
        "--kwargs",
        f'{{"path": "{corpus}"}}',
        cwd=tmp_path,
    )
    assert given.returncode == 0 and "pass  data_loader lines" in given.stdout, describe(given)


def test_check_of_an_unknown_key_is_a_user_error(tmp_path: Path) -> None:
    result = codex_ml_cli("plugins", "check", "metric", "toy_metrc", cwd=tmp_path)
    assert_user_error(result, "plugins check", "toy_metrc", "Did you mean 'toy_metric'")


def test_show_preset_is_a_preset_train_can_use(tmp_path: Path) -> None:
    result = codex_ml_cli("plugins", "show", "data_loader", "lines", "--preset", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    text = result.stdout
    assert "path: ???  # str | PathLike[str], required" in text
    assert "max_record_bytes: 8388608  # int" in text
    loaded = yaml.safe_load(text)
    assert loaded["name"] == "lines" and loaded["path"] == "???"
    (tmp_path / "presets" / "data").mkdir(parents=True)
    (tmp_path / "presets" / "data" / "mine.yaml").write_text(
        text.replace("path: ???", "path: c.txt")
    )
    (tmp_path / "c.txt").write_text("".join(f"line {i} of a tiny corpus\n" for i in range(200)))
    shown = codex_ml_cli(
        "train", "-cd", "presets", "data=mine", "--cfg", "job", "--resolve", cwd=tmp_path
    )
    assert shown.returncode == 0, describe(shown)
    data = yaml.safe_load(shown.stdout)["data"]
    assert data["name"] == "lines" and data["path"] == "c.txt" and data["skip_blank"] is True


def test_show_preset_of_a_callback_is_nested_under_its_key(tmp_path: Path) -> None:
    result = codex_ml_cli(
        "plugins", "show", "callback", "toy_loss_printer", "--preset", cwd=tmp_path
    )
    assert result.returncode == 0, describe(result)
    assert yaml.safe_load(result.stdout) == {
        "toy_loss_printer": {"name": "toy_loss_printer", "prefix": "toy"}
    }
    assert "callbacks=[mine]" in result.stdout
