"""What a user of the original codex-ml brings along keeps working (docs/guides/migrating.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codex_ml.registry import get_data_loader, get_metric, get_model, register_model

FLAT = {"positive": 1.5, "negative": 1.0}


def _flat_weights(tmp_path: Path, weights: dict[str, float] = FLAT) -> Path:
    path = tmp_path / "weighted_accuracy.json"
    path.write_text(json.dumps(weights))
    return path


def test_the_flat_weights_format_of_the_original_is_read(tmp_path: Path) -> None:
    metric = get_metric("offline:weighted-accuracy", weights_path=_flat_weights(tmp_path))
    # targets weigh 1.5, 1.0, 1.0 (unlisted); right on "positive" and "other" -> 2.5 / 3.5
    preds, targets = ["positive", "positive", "other"], ["positive", "negative", "other"]
    assert metric(preds, targets) == pytest.approx(2.5 / 3.5)


def test_a_flat_file_with_a_non_number_names_the_label_and_the_key(tmp_path: Path) -> None:
    path = _flat_weights(tmp_path, {"positive": "high"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="offline:weighted-accuracy") as info:
        get_metric("offline:weighted-accuracy", weights_path=path)
    assert "'positive'" in str(info.value) and str(path) in str(info.value)


def test_weights_path_at_call_time_uses_that_file_and_sees_it_change(tmp_path: Path) -> None:
    metric = get_metric("offline:weighted-accuracy")
    path = _flat_weights(tmp_path, {"a": 3.0, "b": 1.0})
    assert metric(["a", "x"], ["a", "b"], weights_path=path) == pytest.approx(3 / 4)
    assert metric(["a", "x"], ["a", "b"]) == pytest.approx(1 / 2)  # the default weights again
    path.write_text(json.dumps({"a": 1.0, "b": 3.0, "pad": 0.0}))
    assert metric(["a", "x"], ["a", "b"], weights_path=path) == pytest.approx(1 / 4)


def test_a_missing_weights_file_names_the_registry_key(tmp_path: Path) -> None:
    metric = get_metric("offline:weighted-accuracy")
    with pytest.raises(FileNotFoundError, match="offline:weighted-accuracy") as info:
        metric(["a"], ["a"], weights_path=tmp_path / "gone.json")
    assert "gone.json" in str(info.value)


def test_get_model_takes_a_config_mapping() -> None:
    model = get_model("decoder_only", {"n_layer": 1, "n_embd": 32, "n_head": 2, "seed": 0})
    assert len(list(model.blocks)) == 1  # type: ignore[attr-defined]


def test_local_path_is_an_alias_of_path_in_a_config_mapping(isolated_registries: object) -> None:
    seen: dict[str, object] = {}

    @register_model("acme")
    def build(path: str | None = None, *, device: str = "cpu") -> object:
        seen.update(path=path, device=device)
        return object()

    get_model("acme", {"local_path": "artifacts/models/acme"}, device="meta")
    assert seen == {"path": "artifacts/models/acme", "device": "meta"}
    with pytest.raises(ValueError, match="both 'local_path' and 'path'"):
        get_model("acme", {"local_path": "a", "path": "b"})
    with pytest.raises(TypeError, match="config must be a mapping"):
        get_model("acme", ["artifacts/models/acme"])  # type: ignore[arg-type]


def test_a_factory_that_takes_local_path_itself_gets_it(isolated_registries: object) -> None:
    @register_model("legacy")
    def build(local_path: str) -> str:
        return local_path

    assert get_model("legacy", {"local_path": "x"}) == "x"  # type: ignore[comparison-overlap]


def test_a_config_mapping_reaches_the_factory_as_keywords_for_every_kind() -> None:
    records = get_data_loader("lines", {"path": str(Path(__file__)), "max_records": 2})
    assert len(list(records)) == 2


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
        timeout=120,
        check=False,
    )


def test_the_original_environment_variables_are_read(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("first paragraph\nsecond paragraph\n")
    code = (
        "from codex_ml.registry import get_data_loader, get_metric\n"
        "print(get_data_loader('offline:tiny-corpus'))\n"
        "print(get_metric('offline:weighted-accuracy')(['negative'], ['positive']))\n"
    )
    done = _run(
        code,
        CODEX_ML_TINY_CORPUS_PATH=str(corpus),
        CODEX_ML_WEIGHTED_ACCURACY_PATH=str(_flat_weights(tmp_path, {"positive": 0.0, "x": 1})),
    )
    # A zero weight on the only target makes the metric undefined: proof the file was read.
    assert "['first paragraph', 'second paragraph']" in done.stdout, done.stderr
    assert "every target label has weight 0" in done.stderr


@pytest.mark.parametrize(
    ("variable", "code", "key"),
    [
        (
            "CODEX_ML_TINY_CORPUS_PATH",
            "get_data_loader('offline:tiny-corpus')",
            "offline:tiny-corpus",
        ),
        (
            "CODEX_ML_WEIGHTED_ACCURACY_PATH",
            "get_metric('offline:weighted-accuracy')",
            "offline:weighted-accuracy",
        ),
    ],
)
def test_a_missing_file_names_the_key_and_the_variable(
    tmp_path: Path, variable: str, code: str, key: str
) -> None:
    missing = tmp_path / "nowhere" / "file"
    done = _run(
        f"from codex_ml.registry import get_data_loader, get_metric\n{code}\n",
        **{variable: str(missing)},
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("FileNotFoundError: " + key), last
    assert str(missing) in last and variable in last
