"""Training extension points: lifecycle hooks, callbacks and trackers, optimizers and schedulers.

One tiny ``codex-ml train`` run with ``callbacks=[tensorboard,mlflow,csv]`` and a
hook-only third-party distribution installed (``acme_watch``: only
``codex_ml_log`` and ``codex_ml_train_end``) is read by most tests: what
TensorBoard's event reader, MLflow's client, ``metrics.csv`` and the hooks saw
must be the numbers of ``metrics.jsonl``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import QUICK, SRC_DIR, TINY, Command, Run
from conftest import write_distribution

#: A hook plugin that implements only two lifecycle hooks, and records what it is given.
WATCH_HOOKS = """\
import json, os
from codex_ml.plugins import hookimpl

def _write(kind, data):
    path = os.environ["ACME_WATCH_LOG"] + f".rank{os.environ.get('RANK', '0')}"
    with open(path, "a") as fh:
        fh.write(json.dumps({"hook": kind, **data}, default=str) + "\\n")

@hookimpl
def codex_ml_log(run, record):
    _write("log", {"record": dict(record), "rank": run.rank, "world_size": run.world_size,
                   "is_main": run.is_main, "run_dir": str(run.run_dir),
                   "max_steps": run.config["training"]["max_steps"]})

@hookimpl
def codex_ml_train_end(summary):
    _write("train_end", {"summary": dict(summary)})
"""

#: A third-party callback that raises at its second log record.
FAILING_CALLBACK = """\
class Flaky:
    def __init__(self):
        self.calls = 0

    def on_log(self, run, record):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("flaky tracker lost its connection")
"""

#: A callback that asks the run to stop at its third log record.
STOPPING_CALLBACK = """\
from codex_ml.training import StopTraining

class StopAtThree:
    def on_log(self, run, record):
        if record["step"] == 3:
            raise StopTraining("enough at step 3")
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site directory with the hook-only distribution and two callback distributions."""
    root = tmp_path_factory.mktemp("site")
    write_distribution(
        root,
        "acme-watch",
        entry_points={"codex_ml.plugins": {"acme_watch": "acme_watch"}},
        modules={"acme_watch": WATCH_HOOKS},
    )
    write_distribution(
        root,
        "acme-callbacks",
        entry_points={
            "codex_ml.callbacks": {
                "flaky": "acme_flaky:Flaky",
                "stop-at-three": "acme_stop:StopAtThree",
            }
        },
        modules={"acme_flaky": FAILING_CALLBACK, "acme_stop": STOPPING_CALLBACK},
    )
    return root


def with_site(site: Path, **env: str) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(SRC_DIR), str(site)]), **env}


def hook_calls(log: Path, rank: int = 0) -> list[dict[str, Any]]:
    path = Path(f"{log}.rank{rank}")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory, site: Path) -> tuple[Run, Path, Path]:
    """A 12-step run with every tracker and the watching hook plugin; (run, mlruns, hook log)."""
    work = tmp_path_factory.mktemp("tracked")
    mlruns, log = work / "mlruns", work / "hooks.jsonl"
    command = Command(
        [
            "train",
            f"hydra.run.dir={work / 'run'}",
            *TINY,
            "training.max_steps=12",
            "training.log_every=2",
            "training.eval_every=6",
            "training.checkpoint_every=6",
            "run.sample_prompts=[]",
            "callbacks=[tensorboard,mlflow,csv]",
        ],
        work,
        env=with_site(site, MLFLOW_TRACKING_URI=mlruns.as_uri(), ACME_WATCH_LOG=str(log)),
    )
    result = command.run()
    assert result.returncode == 0, result.stderr
    return Run(work / "run", result), mlruns, log


def jsonl_rows(run: Run) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]


def numbers(row: dict[str, Any]) -> dict[str, float]:
    skip = ("event", "step", "max_steps")
    return {k: v for k, v in row.items() if k not in skip and isinstance(v, int | float)}


def test_tensorboard_event_files_hold_every_number_of_metrics_jsonl(tracked) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, _, _ = tracked
    events = EventAccumulator(str(run.dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    expected = {
        (key, row["step"]): value for row in jsonl_rows(run) for key, value in numbers(row).items()
    }
    seen = {
        (tag, event.step): event.value
        for tag in events.Tags()["scalars"]
        for event in events.Scalars(tag)
    }
    assert seen.keys() == expected.keys()
    for key, value in expected.items():  # TensorBoard keeps 32-bit floats
        assert seen[key] == pytest.approx(value, rel=1e-6), key
    assert "config" in " ".join(events.Tags()["tensors"])


def test_mlflow_client_reads_back_the_run_with_the_same_numbers(tracked) -> None:
    from mlflow import MlflowClient

    from codex_ml.callbacks.mlflow_runs import metric_name

    run, mlruns, _ = tracked
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=mlruns.as_uri())
    (found,) = client.search_runs([client.get_experiment_by_name("codex-ml").experiment_id])
    assert found.info.run_name == run.dir.name and found.info.status == "FINISHED"
    assert found.data.params["training.max_steps"] == "12"
    assert found.data.params["optimizer.name"] == "adamw"
    for row in jsonl_rows(run):
        for key, value in numbers(row).items():
            history = client.get_metric_history(found.info.run_id, metric_name(key))
            assert value in [m.value for m in history if m.step == row["step"]], (key, row)
    artefacts = {item.path for item in client.list_artifacts(found.info.run_id)}
    assert artefacts == {"summary.json", "config.yaml", "loss_curve.png"}


def test_metrics_csv_has_a_column_per_number_and_the_same_values(tracked) -> None:
    run, _, _ = tracked
    with (run.dir / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    expected = jsonl_rows(run)
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        assert row["event"] == want["event"]  # the bare word, as a spreadsheet wants it
        assert int(row["step"]) == want["step"]
        assert {k: float(v) for k, v in row.items() if k in numbers(want)} == numbers(want)
        assert all(row[k] == "" for k in row if k not in ("event", "step", *numbers(want)))


def test_a_hook_only_distribution_sees_every_record_and_the_end(tracked) -> None:
    run, _, log = tracked
    calls = hook_calls(log)
    records = [c["record"] for c in calls if c["hook"] == "log"]
    expected = [row for row in jsonl_rows(run) if row["event"] == "log"]
    assert [(r["step"], r["loss"], r["lr"]) for r in records] == [
        (r["step"], r["loss"], r["lr"]) for r in expected
    ]
    first = next(c for c in calls if c["hook"] == "log")
    assert (first["rank"], first["world_size"], first["is_main"]) == (0, 1, True)
    assert first["run_dir"] == str(run.dir) and first["max_steps"] == 12
    (end,) = [c for c in calls if c["hook"] == "train_end"]
    assert end["summary"] == json.loads(json.dumps(run.summary, default=str))


def test_train_log_holds_the_runs_lines(tracked) -> None:
    run, _, _ = tracked
    text = (run.dir / "train.log").read_text()
    assert "start: " in text and "completed: 12 steps" in text
    for row in jsonl_rows(run):
        if row["event"] == "log":
            assert f"step {row['step']}/12  loss {row['loss']:.4f}" in text
    assert "step 6  checkpoint" in text and "step 12  eval  eval_loss=" in text
    assert run.summary["components"]["callbacks.csv"]["key"] == "csv"


def test_a_failing_callback_is_reported_once_and_the_run_goes_on(
    tmp_path: Path, site: Path
) -> None:
    command = Command(
        ["train", f"hydra.run.dir={tmp_path / 'run'}", *QUICK, "training.max_steps=5",
         "training.log_every=1", "+callbacks.flaky.name=flaky"],
        tmp_path,
        env=with_site(site, ACME_WATCH_LOG=str(tmp_path / "hooks.jsonl")),
    )  # fmt: skip
    result = command.run()
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 5
    (fault,) = summary["faults"]
    assert "callback 'flaky' (flaky from acme-callbacks 1.0)" in fault
    assert "on_log at step 2" in fault and "lost its connection" in fault
    assert result.stderr.count("lost its connection") == 1
    assert "lost its connection" in (tmp_path / "run" / "train.log").read_text()


def test_stop_training_stops_with_a_checkpoint_status_stopped_and_exit_zero(
    tmp_path: Path, site: Path
) -> None:
    command = Command(
        ["train", f"hydra.run.dir={tmp_path / 'run'}", *QUICK, "training.max_steps=20",
         "training.log_every=1", "+callbacks.stop.name=stop-at-three"],
        tmp_path,
        env=with_site(site, ACME_WATCH_LOG=str(tmp_path / "hooks.jsonl")),
    )  # fmt: skip
    result = command.run()
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    # Asked while step 3 was reported: honoured after the next step, as a signal is.
    assert summary["status"] == "stopped" and summary["steps"] == 4
    assert summary["stop_reason"] == "enough at step 3"
    assert summary["checkpoint"].endswith("step-4")
    assert "stopped early: enough at step 3" in result.stdout


def test_sgd_with_a_constant_schedule_trains(tmp_path: Path) -> None:
    command = Command(
        ["train", f"hydra.run.dir={tmp_path / 'run'}", *QUICK, "training.max_steps=20",
         "training.log_every=1", "training.lr=0.3", "training.warmup_steps=0",
         "optimizer=sgd", "scheduler=constant"],
        tmp_path,
    )  # fmt: skip
    result = command.run()
    assert result.returncode == 0, result.stderr
    run = Run(tmp_path / "run", result)
    rows = [r for r in jsonl_rows(run) if r["event"] == "log"]
    assert {r["lr"] for r in rows} == {0.3}
    assert rows[-1]["loss"] < 0.8 * rows[0]["loss"]
    assert run.summary["components"]["optimizer"]["key"] == "sgd"


def test_an_optimizer_typo_is_a_did_you_mean_error(tmp_path: Path) -> None:
    result = Command(["train", "+optimizer.lrr=1", *QUICK], tmp_path).run()
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "optimizer.lrr" in message and "Did you mean 'lr'?" in message
    assert "training.lr" in message


# -- in-process: the default optimizer and schedule are today's, exactly ------------------------

#: Losses of a tiny in-process run recorded before optimizers and schedulers became registry
#: keys (AdamW betas (0.9, 0.95), warmup 3 then cosine to 0.1 * lr), by (event, step).
RECORDED = {
    ("eval", 0): 5.567116975784302,
    ("log", 1): 5.528721332550049,
    ("log", 5): 4.565793514251709,
    ("eval", 5): 4.381209850311279,
    ("log", 10): 4.092391490936279,
    ("eval", 10): 4.015646457672119,
}


def test_adamw_and_cosine_from_the_registries_reproduce_the_recorded_losses() -> None:
    from functools import partial

    from codex_ml.data.lines import load_tiny_corpus
    from codex_ml.models.decoder_only import build_decoder_only
    from codex_ml.registry import get_registry
    from codex_ml.tokenizers.byte_level import ByteTokenizer
    from codex_ml.training import FunctionalTrainer

    records = load_tiny_corpus()
    cut = len(records) * 9 // 10
    histories = []
    for parts in (
        {},  # the trainer's own default
        {
            "optimizer": partial(get_registry("optimizer").get("adamw"), betas=[0.9, 0.95]),
            "scheduler": partial(get_registry("scheduler").get("cosine"), min_lr_ratio=0.1),
        },
    ):
        model = build_decoder_only(n_layer=2, n_head=2, n_embd=64, block_size=64, seed=0)
        trainer = FunctionalTrainer(
            max_steps=10, batch_size=4, block_size=64, warmup_steps=3, log_every=1,
            device="cpu", num_threads=1, eval_every=5, eval_max_batches=2, **parts,
        )  # fmt: skip
        result = trainer(model, ByteTokenizer(), records[:cut], records[cut:])
        histories.append(
            {(r["event"], r["step"]): r.get("loss", r.get("eval_loss")) for r in result.history}
        )
    assert histories[0] == histories[1]  # bit for bit
    for key, loss in RECORDED.items():
        assert histories[1][key] == pytest.approx(loss, rel=1e-6, abs=0), key


def test_schedules_follow_their_shapes() -> None:
    from codex_ml.training.schedules import constant, cosine, linear, lr_at, wsd

    kw = {"lr": 1.0, "max_steps": 100, "warmup_steps": 10}
    assert [cosine(**kw)(s) for s in (5, 10, 100)] == [0.5, 1.0, pytest.approx(0.1)]
    assert cosine(**kw)(40) == lr_at(40, min_lr_ratio=0.1, **kw)
    assert [linear(**kw)(s) for s in (10, 55, 100)] == [1.0, 0.5, 0.0]
    assert {constant(**kw)(s) for s in range(10, 101)} == {1.0}
    schedule = wsd(**kw, decay_fraction=0.2)
    assert {schedule(s) for s in range(10, 81)} == {1.0}
    assert schedule(90) == pytest.approx(0.5) and schedule(100) == 0.0
    with pytest.raises(ValueError, match="decay_fraction"):
        wsd(**kw, decay_fraction=0.0)


def test_early_stopping_asks_to_stop_after_patience_stale_evaluations() -> None:
    from codex_ml.callbacks.early_stopping import EarlyStopping
    from codex_ml.training import StopTraining

    stopper = EarlyStopping(patience=2, min_delta=0.01)
    for step, loss in ((0, 5.0), (10, 4.0), (20, 3.995)):
        stopper.on_evaluate(None, {"step": step, "eval_loss": loss})
    with pytest.raises(StopTraining, match="best 4 at step 10"):
        stopper.on_evaluate(None, {"step": 30, "eval_loss": 4.1})


def test_a_missing_tracker_package_names_its_extra(tmp_path: Path) -> None:
    blocker = tmp_path / "block" / "tensorboard"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError('no', name='tensorboard')\n")
    result = Command(
        ["train", *QUICK, "callbacks=[tensorboard]"],
        tmp_path,
        env={"PYTHONPATH": os.pathsep.join([str(SRC_DIR), str(tmp_path / "block")])},
    ).run()
    assert result.returncode == 2
    assert 'pip install "codex-ml[tensorboard]"' in result.stderr


@pytest.mark.slow
def test_a_hook_only_distribution_sees_every_record_under_torchrun(
    tmp_path: Path, site: Path
) -> None:
    log = tmp_path / "hooks.jsonl"
    env = {
        **os.environ, "OMP_NUM_THREADS": "1", "ACME_WATCH_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(SRC_DIR), str(site)]),
    }  # fmt: skip
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "codex_ml.cli", "train", f"hydra.run.dir={tmp_path / 'run'}", *QUICK,
        "training.max_steps=6", "training.log_every=2", "training.checkpoint_every=0",
    ]  # fmt: skip
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run = Run(tmp_path / "run", done)
    expected = [(r["step"], r["loss"]) for r in jsonl_rows(run) if r["event"] == "log"]
    for rank in (0, 1):
        calls = hook_calls(log, rank)
        seen = [(c["record"]["step"], c["record"]["loss"]) for c in calls if c["hook"] == "log"]
        assert seen == expected, rank
        assert {c["world_size"] for c in calls if c["hook"] == "log"} == {2}
        (end,) = [c for c in calls if c["hook"] == "train_end"]
        assert end["summary"]["status"] == "completed" and end["summary"]["steps"] == 6
    assert not math.isnan(expected[-1][1])
