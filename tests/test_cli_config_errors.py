"""``codex-ml train`` config mistakes: one paragraph, exit 2, "did you mean", before torch.

Each is a real ``codex-ml train`` process, as a user would type it; they run
side by side since each is mostly interpreter start-up.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import Command, assert_user_error, describe, run_concurrently

#: name -> (overrides, what the one-paragraph error must name)
MISTAKES = {
    "section typo": (["trainig.max_steps=2"], ["trainig", "Did you mean 'training'"]),
    "group path as a key": (["model/offline=minilm"], ["model=offline/minilm"]),
    "run typo": (["run.eval_fractoin=0.2"], ["eval_fractoin", "Did you mean 'eval_fraction'"]),
    "added run typo": (["+run.eval_fractoin=0.2"], ["eval_fractoin", "'eval_fraction'"]),
    "training typo": (["training.max_stpes=2"], ["max_stpes", "Did you mean 'max_steps'"]),
    "internal output_dir": (["+training.output_dir=elsewhere"], ["output_dir", "itself"]),
    "internal resume_from": (["+training.resume_from=elsewhere"], ["resume_from", "itself"]),
    "wrong type": (["model.n_layer=abc"], ["model.n_layer: expected int, got 'abc'"]),
    "wrong type in an added mapping": (
        ["+model={name: decoder_only, n_embd: wide}"],
        ["model.n_embd: expected int, got 'wide'"],
    ),
    "sweep without -m": (["training.lr=1e-3,3e-3"], ["-m"]),
    "a _target_ added": (["+model._target_=os.system"], ["model._target_", "never import code"]),
    "preset typo": (["model=offline/minilmm"], ["Did you mean model=offline/minilm?"]),
    "run preset typo": (["-cn", "offline/catalog"], ["Did you mean offline/catalogue?"]),
    "unknown option": (["--frobnicate"], ["--frobnicate", "--help"]),
    "shell completion": (["--shell-completion", "install=bash"], ["not offered"]),
}


@pytest.fixture(scope="module")
def mistakes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    cwd = tmp_path_factory.mktemp("mistakes")
    commands = {name: Command(["train", *args], cwd) for name, (args, _) in MISTAKES.items()}
    return {"cwd": cwd, "results": run_concurrently(commands)}


@pytest.mark.parametrize("name", list(MISTAKES))
def test_a_config_mistake_is_one_paragraph_naming_the_fix(mistakes: dict, name: str) -> None:
    assert_user_error(mistakes["results"][name], "train", *MISTAKES[name][1])


def test_no_mistake_leaves_a_run_directory(mistakes: dict) -> None:
    runs = Path(mistakes["cwd"]) / "runs"
    assert not runs.exists() or list(runs.iterdir()) == []


def test_the_accepted_names_of_a_trainer_leave_out_what_codex_ml_sets(mistakes: dict) -> None:
    message = assert_user_error(mistakes["results"]["training typo"], "train")
    accepted = message.split("accepts:", 1)[1]
    assert "output_dir" not in accepted and "resume_from" not in accepted
    assert "max_steps" in accepted


def test_a_typo_is_reported_before_torch_is_imported(tmp_path: Path) -> None:
    """The checks read factories from source: ``-X importtime`` lists every module imported."""
    command = Command(["train", "model.n_layr=2"], tmp_path, {"PYTHONPROFILEIMPORTTIME": "1"})
    result = command.run()
    assert result.returncode == 2, describe(result)
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    assert "torch" not in imported and "codex_ml.run.precheck" in imported
    assert "Did you mean 'n_layer'" in result.stderr


def test_a_sweep_under_torchrun_is_refused(tmp_path: Path) -> None:
    env = {"WORLD_SIZE": "2", "RANK": "0"}  # as torchrun sets them for rank 0
    result = Command(["train", "-m", "training.lr=1e-3,3e-3"], tmp_path, env).run()
    assert_user_error(result, "train", "-m (multirun)", "torchrun")


def test_help_is_codex_mls_own(tmp_path: Path) -> None:
    result = Command(["train", "--help"], tmp_path).run()
    assert result.returncode == 0, describe(result)
    for needle in ("-cn", "-cd", "-m", "training.resume", "+GROUP.KEY", "offline/minilm"):
        assert needle in result.stdout, needle
    assert "powered by Hydra" not in result.stdout
    hydra_help = Command(["train", "--hydra-help"], tmp_path).run()
    assert hydra_help.returncode == 0 and "compose API" in hydra_help.stdout


def test_train_version_is_codex_mls(tmp_path: Path) -> None:
    from codex_ml import __version__

    result = Command(["train", "--version"], tmp_path).run()
    assert result.returncode == 0 and result.stdout.strip() == f"codex-ml {__version__}"
