"""``codex-ml evaluate`` and ``codex-ml generate`` on the session's tiny trained run.

All the commands of this file run side by side once (``outcomes``); each test
then reads one of them. Reported numbers are recomputed here from what the
report says was scored, with the catalogue's own metrics and reward model.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_helpers import (
    PROMPTS,
    Command,
    Run,
    assert_succeeded,
    assert_user_error,
    run_concurrently,
)

pytest_plugins = ["cli_fixtures"]

#: "prompt<TAB>reference" records with labels the weighted-accuracy weights know.
LABELLED = [
    ("Review: a wonderful, moving film. Sentiment:", "positive"),
    ("Review: dull and far too long. Sentiment:", "negative"),
    ("Is this a question? Label:", "question"),
    ("Two plus two is", "four"),
]
GREEDY_SAMPLES = 2


class Outcomes:
    """The finished commands, by name, and the paths they were given."""

    def __init__(self, tmp: Path, run: Run) -> None:
        self.run = run
        # The run sampled PROMPTS[0] with the settings evaluate uses, so that completion is
        # the answer evaluate will give: one reference is right, and the scores are not all 0.
        first = json.loads((run.dir / "samples.jsonl").read_text().splitlines()[0])
        assert first["prompt"] == PROMPTS[0]
        self.qa = [(PROMPTS[0], " ".join(first["completion"].split())), *LABELLED]
        self.qa_file = tmp / "qa.tsv"
        self.qa_file.write_text("".join(f"{p}\t{r}\n" for p, r in self.qa), encoding="utf-8")
        self.report_file = tmp / "reports" / "qa.json"  # its directory is made by evaluate
        self.not_a_run = tmp / "not-a-run"
        self.not_a_run.mkdir()
        self.missing = tmp / "no-such-run"
        commands = {
            "references": [
                "evaluate",
                str(run.dir),
                "metrics=offline/all",
                "data=offline/lines",
                f"data.path={self.qa_file}",
                "reward_model=offline/heuristic",
                "--output",
                str(self.report_file),
            ],
            "default": ["evaluate", str(run.dir)],
            "generate": [
                "generate",
                str(run.dir / "checkpoints" / "step-30"),
                *(arg for prompt in PROMPTS for arg in ("--prompt", prompt)),
                f"--num-samples={GREEDY_SAMPLES}",
                "--temperature=0",
                "--max-new-tokens=12",
            ],
            "evaluate_missing_run": ["evaluate", str(self.missing)],
            "evaluate_unknown_preset": ["evaluate", str(run.dir), "metrics=offline/nope"],
            "generate_not_a_run": ["generate", str(self.not_a_run), "--prompt", "Hi"],
        }
        self.results = run_concurrently({k: Command(v, tmp) for k, v in commands.items()})

    def __getitem__(self, name: str) -> subprocess.CompletedProcess:
        return self.results[name]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, trained_run: Run) -> Outcomes:
    return Outcomes(tmp_path_factory.mktemp("evaluate"), trained_run)


@pytest.fixture(scope="module")
def qa_report(outcomes: Outcomes) -> dict:
    assert_succeeded(outcomes["references"])
    return json.loads(outcomes.report_file.read_text())


# --- evaluate --------------------------------------------------------------------


def test_evaluate_writes_the_report_where_asked_and_says_where(outcomes: Outcomes) -> None:
    result = outcomes["references"]
    assert_succeeded(result)
    assert f"report: {outcomes.report_file}" in result.stderr
    # stdout is the JSON alone, so `codex-ml evaluate ... | python -m json.tool` works
    printed = json.loads(result.stdout)
    assert printed["metrics"] == json.loads(outcomes.report_file.read_text())["metrics"]
    assert outcomes.report_file.is_file()
    assert not (outcomes.run.dir / "qa.json").exists()


def test_reference_metrics_score_the_answers_against_the_references(
    qa_report: dict, outcomes: Outcomes
) -> None:
    from codex_ml.registry import get_metric

    answers = qa_report["answers"]
    assert [(a["prompt"], a["reference"]) for a in answers] == outcomes.qa
    predictions = [a["answer"] for a in answers]
    references = [a["reference"] for a in answers]
    metrics = qa_report["metrics"]
    for alias, key in [
        ("exact_match", "exact_match"),
        ("f1", "f1"),
        ("weighted_accuracy", "offline:weighted-accuracy"),
    ]:
        assert isinstance(metrics[alias], float), f"{alias}: {metrics[alias]}"
        assert metrics[alias] == pytest.approx(get_metric(key)(predictions, references)), alias
    assert metrics["exact_match"] >= 1 / len(answers)  # the first answer is its reference
    assert metrics["f1"] >= 1 / len(answers)
    assert metrics["weighted_accuracy"] >= 1 / (1 + 1 + 1 + 1.5 + 1)  # "question" weighs 1.5
    assert qa_report["eval_records"] == len(outcomes.qa)  # other data: all of it is evaluated


def test_token_and_generation_metrics_are_reported_too(qa_report: dict) -> None:
    metrics = qa_report["metrics"]
    assert metrics["ppl"] > 1.0
    assert 0.0 <= metrics["token_accuracy"] <= 1.0
    assert 0.0 <= metrics["dist_1"] <= 1.0 and 0.0 <= metrics["dist_2"] <= 1.0


def test_generations_are_scored_by_the_chosen_reward_model(qa_report: dict) -> None:
    from codex_ml.registry import get_reward_model

    assert qa_report["reward_model"] == "offline:heuristic"
    reward_model = get_reward_model("offline:heuristic")
    samples = qa_report["samples"]
    assert [s["prompt"] for s in samples] == list(PROMPTS)
    rewards = [reward_model.evaluate(s["prompt"], s["completion"]) for s in samples]
    assert [s["reward"] for s in samples] == pytest.approx(rewards)
    assert qa_report["reward"]["mean"] == pytest.approx(sum(rewards) / len(rewards))
    assert qa_report["reward"]["min"] == pytest.approx(min(rewards))


def test_the_report_says_what_was_evaluated(qa_report: dict, outcomes: Outcomes) -> None:
    assert qa_report["run_dir"] == str(outcomes.run.dir)
    checkpoint = outcomes.run.dir / "checkpoints" / "step-30"
    assert qa_report["checkpoint"] == {"path": str(checkpoint), "step": 30}
    assert "data=offline/lines" in qa_report["overrides"]
    assert qa_report["versions"]["torch"]


def test_evaluate_by_default_rescores_the_runs_own_held_out_split(outcomes: Outcomes) -> None:
    assert_succeeded(outcomes["default"])
    report = json.loads((outcomes.run.dir / "evaluation.json").read_text())
    trained = outcomes.run.summary
    # Same checkpoint, same split, same sampling: the numbers the run itself reported.
    assert report["eval_records"] == trained["data"]["eval"]
    assert report["metrics"] == pytest.approx(trained["metrics"], rel=1e-5)
    samples = [json.loads(line) for line in (outcomes.run.dir / "samples.jsonl").open()]
    assert report["samples"] == samples


# --- generate --------------------------------------------------------------------


def test_generate_prints_samples_for_each_prompt(outcomes: Outcomes) -> None:
    result = outcomes["generate"]
    assert_succeeded(result)
    blocks = result.stdout.split("\n---\n")
    assert blocks[-1].strip() == ""
    samples = blocks[:-1]
    assert len(samples) == GREEDY_SAMPLES * len(PROMPTS)
    for sample, prompt in zip(samples, PROMPTS * GREEDY_SAMPLES, strict=True):
        assert sample.startswith(prompt)
        assert len(sample) > len(prompt)  # something was generated
    # --temperature=0 is greedy decoding: every round gives the same text.
    assert samples[: len(PROMPTS)] == samples[len(PROMPTS) :]


# --- bad input -------------------------------------------------------------------


def test_evaluate_names_a_run_directory_that_does_not_exist(outcomes: Outcomes) -> None:
    assert_user_error(outcomes["evaluate_missing_run"], "evaluate", str(outcomes.missing))


def test_evaluate_names_an_unknown_preset(outcomes: Outcomes) -> None:
    assert_user_error(outcomes["evaluate_unknown_preset"], "evaluate", "offline/nope")


def test_generate_names_a_directory_that_is_not_a_run(outcomes: Outcomes) -> None:
    assert_user_error(outcomes["generate_not_a_run"], "generate", str(outcomes.not_a_run))
