"""No secret reaches any file of a run, whatever resolver or nesting carried it there.

Issue 21's cases end to end: a token in ``run.sample_prompts`` (so in every
sample), a numeric secret through ``${oc.decode:...}``, and a variable named
by another variable (``${oc.env:${oc.env:WHICH}}``). Every file the run
writes is read back, checkpoints and ``.hydra/`` included.
"""

from __future__ import annotations

from pathlib import Path

from cli_helpers import Command, describe

TOKEN = "ghp_s3cretTokenValue4242"
PIN = "48291377"
NESTED = "nested-secret-value-9187"


def test_no_secret_in_any_file_of_a_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = Command(
        [
            "train",
            f"hydra.run.dir={run_dir}",
            "model=offline/minilm",
            "training.max_steps=2",
            "training.batch_size=2",
            "training.block_size=16",
            "training.eval_every=2",
            "training.checkpoint_every=2",
            "training.eval_max_batches=1",
            "run.eval_max_tokens=64",
            "run.max_new_tokens=2",
            "run.progress=false",
            "run.sample_prompts=['${oc.env:GITHUB_TOKEN}','${oc.env:${oc.env:WHICH_ONE}}']",
            "run.seed='${oc.decode:${oc.env:DEPLOY_PIN_SECRET}}'",  # an int, in three groups
        ],
        tmp_path,
        {
            "GITHUB_TOKEN": TOKEN,
            "DEPLOY_PIN_SECRET": PIN,
            "WHICH_ONE": "SERVICE_API_KEY",
            "SERVICE_API_KEY": NESTED,
        },
    ).run()
    assert result.returncode == 0, describe(result)
    files = [path for path in run_dir.rglob("*") if path.is_file()]
    names = {path.name for path in files}
    assert {"samples.jsonl", "config.yaml", "summary.json", "train.log"} <= names
    assert any(path.parent.name == ".hydra" for path in files)
    for path in files:
        data = path.read_bytes()
        for secret in (TOKEN, PIN, NESTED):
            assert secret.encode() not in data, f"{secret!r} written to {path}"
    for stream in (result.stdout, result.stderr):
        assert TOKEN not in stream and PIN not in stream and NESTED not in stream
    assert "<redacted: $GITHUB_TOKEN>" in (run_dir / "samples.jsonl").read_text()
