"""``codex-ml evaluate RUN --tasks``: lm-evaluation-harness tasks, offline, on the run's model.

Tasks here are local YAMLs over local JSONL files (``dataset_path: json``).
The scores must be those of ``lm_eval --model hf`` on the run's ``codex-ml
export`` folder: the same accuracies from the same log-likelihoods (float
noise aside), the same perplexities, the same greedy generations.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_helpers import Command, Run, assert_user_error, cli_env, describe

pytest_plugins = ["cli_fixtures"]

CORPUS = Path(__file__).resolve().parents[1] / "data" / "offline" / "tiny_corpus.txt"
TASKS = ("tiny_mc", "tiny_rolling", "tiny_gen")
DISTRACTORS = ("banana", "xylophone", "quietly", "seventeen")


def task_folder(root: Path) -> Path:
    """Three tasks, one per kind of request, over 12 documents cut from the tiny corpus."""
    folder = root / "tasks"
    folder.mkdir()
    docs = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if len(words) >= 6 and len(docs) < 12:
            answer = len(docs) % 3
            choices = list(DISTRACTORS[:2])
            choices.insert(answer, words[4])
            docs.append({"question": " ".join(words[:4]), "choices": choices, "answer": answer})
    data = folder / "docs.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    common = (
        f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n"
    )
    (folder / "tiny_mc.yaml").write_text(
        "task: tiny_mc\n" + common + "output_type: multiple_choice\n"
        'doc_to_text: "{{question}}"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: "{{answer}}"\n'
        "metric_list:\n  - metric: acc\n  - metric: acc_norm\n"
    )
    (folder / "tiny_rolling.yaml").write_text(
        "task: tiny_rolling\n" + common + "output_type: loglikelihood_rolling\n"
        'doc_to_text: ""\ndoc_to_target: "{{question}} {{choices[answer]}}"\n'
        "metric_list:\n  - metric: word_perplexity\n  - metric: byte_perplexity\n"
        "  - metric: bits_per_byte\n"
    )
    (folder / "tiny_gen.yaml").write_text(
        "task: tiny_gen\n" + common + "output_type: generate_until\n"
        'doc_to_text: "{{question}}"\ndoc_to_target: " {{choices[answer]}}"\n'
        'generation_kwargs:\n  until: ["\\n", "."]\n  max_gen_toks: 10\n  do_sample: false\n'
        "metric_list:\n  - metric: exact_match\n"
    )
    return folder


class Scored:
    """The shared run scored on the tasks by codex-ml and by lm_eval on its export."""

    def __init__(self, tmp: Path, run: Run) -> None:
        self.run = run
        self.tasks = task_folder(tmp)
        self.report_file = tmp / "report.json"
        names = ",".join(TASKS)
        result = Command(
            [
                *("evaluate", str(run.dir), "--tasks", names, "--include-path", str(self.tasks)),
                *("--output", str(self.report_file), "--max-tokens", "256"),
            ],
            tmp,
        ).run()
        assert result.returncode == 0, describe(result)
        self.result = result
        self.report = json.loads(self.report_file.read_text())
        export = tmp / "export"
        exported = Command(["export", str(run.dir), "--out", str(export)], tmp).run()
        assert exported.returncode == 0, describe(exported)
        out = tmp / "lm_eval"
        harness = subprocess.run(
            [
                *(sys.executable, "-m", "lm_eval", "--model", "hf"),
                *("--model_args", f"pretrained={export}", "--tasks", names),
                *("--include_path", str(self.tasks), "--device", "cpu"),
                *("--output_path", str(out), "--log_samples"),
            ],
            env=cli_env(HF_DATASETS_OFFLINE="1"),
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert harness.returncode == 0, describe(harness)
        self.hf = json.loads(next(out.rglob("results_*.json")).read_text())["results"]
        self.samples = {t: _read_samples(next(out.rglob(f"samples_{t}_*.jsonl"))) for t in TASKS}


def _read_samples(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory, trained_run: Run) -> Scored:
    return Scored(tmp_path_factory.mktemp("lm-eval"), trained_run)


def test_scores_go_to_the_report_without_the_filter_suffix(scored: Scored) -> None:
    tasks = scored.report["tasks"]
    assert set(tasks) == set(TASKS)
    assert {"acc", "acc_norm", "acc_stderr"} <= set(tasks["tiny_mc"])
    assert {"word_perplexity", "byte_perplexity", "bits_per_byte"} <= set(tasks["tiny_rolling"])
    assert "exact_match" in tasks["tiny_gen"]
    assert not [k for scores in tasks.values() for k in scores if "," in k]
    assert json.loads(scored.result.stdout)["tasks"] == tasks  # stdout is the JSON alone
    table = scored.result.stderr
    assert "tiny_mc" in table and "acc_norm" in table  # and a table on the console
    assert scored.report["eval_tokens"] == 256  # the held-out split is scored as well


def test_accuracies_match_lm_eval_hf_on_the_export(scored: Scored) -> None:
    ours, theirs = scored.report["tasks"], scored.hf
    for metric in ("acc", "acc_norm"):
        assert ours["tiny_mc"][metric] == theirs["tiny_mc"][f"{metric},none"], metric
    assert ours["tiny_gen"]["exact_match"] == theirs["tiny_gen"]["exact_match,none"]
    for metric in ("word_perplexity", "byte_perplexity", "bits_per_byte"):
        assert ours["tiny_rolling"][metric] == pytest.approx(
            theirs["tiny_rolling"][f"{metric},none"], rel=1e-4
        ), metric


def test_the_log_likelihoods_and_generations_are_the_same(scored: Scored) -> None:
    """Each request of lm_eval's hf run, answered by codex-ml's adapter on the run's model."""
    from codex_ml.evaluation import CodexLM
    from codex_ml.run.restore import compose_run, locate, restore_model

    where = locate(scored.run.dir)
    _, tokenizer, model = restore_model(compose_run(where.run_dir, []), where.checkpoint)
    lm = CodexLM(model, tokenizer)
    requests, expected = [], []
    for sample in scored.samples["tiny_mc"]:
        for args, resp in zip(sample["arguments"].values(), sample["resps"], strict=True):
            requests.append(SimpleNamespace(args=(args["arg_0"], args["arg_1"])))
            expected.append((float(resp[0][0]), resp[0][1] == "True"))
    answers = lm.loglikelihood(requests)
    assert [a[1] for a in answers] == [e[1] for e in expected]
    assert [a[0] for a in answers] == pytest.approx([e[0] for e in expected], abs=1e-4)
    generated = lm.generate_until(
        [
            SimpleNamespace(
                args=(s["arguments"]["gen_args_0"]["arg_0"], s["arguments"]["gen_args_0"]["arg_1"])
            )
            for s in scored.samples["tiny_gen"]
        ]
    )
    assert generated == [s["resps"][0][0] for s in scored.samples["tiny_gen"]]


def test_limit_and_num_fewshot_reach_the_harness(tmp_path: Path, scored: Scored) -> None:
    output = tmp_path / "few.json"
    result = Command(
        [
            *("evaluate", str(scored.run.dir), "--tasks", "tiny_mc"),
            *("--include-path", str(scored.tasks), "--limit", "4", "--num-fewshot", "1"),
            *("--max-tokens", "64", "--output", str(output)),
        ],
        tmp_path,
    ).run()
    assert result.returncode == 0, describe(result)
    assert json.loads(output.read_text())["tasks"]["tiny_mc"]["sample_len"] == 4


def test_an_unknown_task_is_one_paragraph_naming_it(tmp_path: Path, scored: Scored) -> None:
    result = Command(
        ["evaluate", str(scored.run.dir), "--tasks", "nope", "--include-path", str(scored.tasks)],
        tmp_path,
    ).run()
    assert_user_error(result, "evaluate", "nope", "tiny_mc")


def test_without_the_eval_extra_the_error_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from codex_ml.cli.evaluate import run

    monkeypatch.setitem(sys.modules, "lm_eval", None)  # as if it were not installed
    assert run([str(tmp_path), "--tasks", "tiny_mc"]) == 2
    message = capsys.readouterr().err.strip()
    assert message.count("\n") == 0 and 'pip install "codex-ml[eval]"' in message
