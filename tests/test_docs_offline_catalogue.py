"""docs/guides/offline_catalogue.md: its facts match the code, and its console examples run.

The guide's fenced ``console`` blocks are read as ``$ COMMAND`` lines, each
followed by the output it must print: every such line must appear, in order,
among the command's output lines (white space runs count as one space; ``...``
inside a line matches any text, and a line that is only ``...`` stands for
lines skipped). ``console exit=N`` expects exit status N (else 0); ``norun``
blocks are shown, not run.

The examples run with bash, in order, in one scratch directory whose project
root (``CODEX_ML_PROJECT_ROOT``) holds tiny but real GPT-2 and TinyLlama
artefacts. ``codex-ml`` is this checkout's ``python -m codex_ml.cli``, and
``codex-ml train`` gets :data:`SMALLER` appended, so that each run takes
seconds; the guide says so, and never sets those keys itself.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import cli_env, describe
from hydra import compose, initialize_config_dir

from codex_ml.artefacts import ARTEFACTS, SHARED_ENV_VAR
from codex_ml.resources import configs_dir
from codex_ml.rewards.heuristic import RULES, HeuristicRewardModel
from codex_ml.run.assemble import GROUP_KINDS, METRIC_INPUTS, plan, resolve

pytest_plugins = ["cli_fixtures"]

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guides" / "offline_catalogue.md"
TEXT = GUIDE.read_text(encoding="utf-8")

#: What the test appends to every ``codex-ml train`` of the guide: small batches and blocks.
SMALLER = (
    "training.batch_size=4",
    "training.block_size=64",
    "training.eval_every=0",
    "training.eval_max_batches=2",
    "run.max_new_tokens=8",
    "run.progress=false",
)


@dataclass(frozen=True)
class Example:
    """One ``$ command`` of a console block, what it must print and its exit status."""

    line: int
    command: str
    expected: tuple[str, ...]
    status: int

    def argv(self) -> list[str]:
        """The words of the command, without leading ``VAR=value`` assignments."""
        words = shlex.split(self.command)
        while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
            words.pop(0)
        return words


def console_blocks() -> Iterator[tuple[int, list[str], list[str]]]:
    """(line number, info-string options, lines) of each ``console`` block."""
    lines = TEXT.splitlines()
    index = 0
    while index < len(lines):
        fence = re.match(r"^```console\b(.*)$", lines[index])
        index += 1
        if not fence:
            continue
        start = index
        while not lines[index].startswith("```"):
            index += 1
        yield start, fence.group(1).split(), lines[start:index]
        index += 1


def examples(*, run: bool = True) -> list[Example]:
    """The commands of the runnable (``run``) or shown-only console blocks, in page order."""
    found = []
    for start, options, lines in console_blocks():
        if ("norun" in options) == run:
            continue
        status = int(next((o.split("=", 1)[1] for o in options if o.startswith("exit=")), 0))
        for offset, line in enumerate(lines):
            if line.startswith("$ "):
                expected = []
                for following in lines[offset + 1 :]:
                    if following.startswith("$ "):
                        break
                    expected.append(following)
                found.append(Example(start + offset + 1, line[2:], tuple(expected), status))
    return found


def train_examples() -> list[Example]:
    return [e for e in examples() if e.argv()[:2] == ["codex-ml", "train"]]


# --- the guide's facts ----------------------------------------------------------------


def _fragments(group: str) -> list[str]:
    root = configs_dir() / group
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.glob("offline/*.yaml"))


def _keys_named(group: str, name: str) -> set[str]:
    from omegaconf import OmegaConf

    node = OmegaConf.load(configs_dir() / group / f"{name}.yaml")
    if group == "metrics":
        return {str(entry["name"]) for key, entry in node.items() if key != "defaults"}
    return {str(node["name"])}


def _preset_rows() -> dict[str, str]:
    """``group=offline/name`` -> the "Binds" cell of the guide's preset table."""
    rows = re.findall(r"^\| `(\w+=offline/\w+)` \| ([^|]*) \|", TEXT, re.MULTILINE)
    return dict(rows)


def test_every_preset_is_in_the_table_with_the_keys_it_binds() -> None:
    rows = _preset_rows()
    for group in (*GROUP_KINDS, "metrics"):
        for name in _fragments(group):
            preset = f"{group}={name}"
            assert preset in rows, f"{preset} is not in the guide's preset table"
            for key in _keys_named(group, name):
                assert f"`{key}`" in rows[preset], f"{preset} binds {key}"
    assert set(rows) == {f"{g}={n}" for g in (*GROUP_KINDS, "metrics") for n in _fragments(g)}
    assert "-cn offline/catalogue" in TEXT


def test_the_embedded_default_is_described_as_it_is() -> None:
    from omegaconf import OmegaConf

    (paragraph,) = [p for p in TEXT.split("\n\n") if "with no arguments runs" in p]
    for entry in OmegaConf.load(configs_dir() / "train.yaml").defaults:
        if isinstance(entry, str):
            continue  # _self_
        ((group, preset),) = entry.items()
        preset = "null" if preset is None else preset  # as written on a command line
        assert f"`{group}={preset}`" in paragraph, group


def test_the_artefact_tree_and_every_location_variable_are_documented() -> None:
    for artefact in ARTEFACTS.values():
        assert f"`{artefact.env_var}`" in TEXT
        assert f"      {artefact.name}/" in TEXT  # under artifacts/models/ in the tree
    for name in (SHARED_ENV_VAR, "CODEX_ML_PROJECT_ROOT"):
        assert f"`{name}`" in TEXT
    for shipped in ("tiny_corpus.txt", "weighted_accuracy.json"):
        assert (configs_dir().parent / "data" / "offline" / shipped).is_file()
        assert shipped in TEXT


def test_every_metric_input_kind_is_described() -> None:
    kinds = re.findall(r"^\| `([a-z-]+)` \|", TEXT, re.MULTILINE)
    assert [k for k in kinds if k in METRIC_INPUTS] == list(METRIC_INPUTS)


def test_every_reward_rule_is_described_with_its_default_weight() -> None:
    rules = re.findall(r"^\| (\w+) \| ", TEXT, re.MULTILINE)
    assert [r for r in rules if r in RULES] == list(RULES)
    defaults = HeuristicRewardModel()
    for name in ("marker_weight", "overlap_weight", "banned_penalty", "length_penalty"):
        assert f"`{name}` ({getattr(defaults, name):g})" in TEXT, name
    assert f"`max_words` ({defaults.max_words})" in TEXT


# --- the console examples ----------------------------------------------------------------


def test_the_guide_has_an_example_of_each_command() -> None:
    shown = [" ".join(e.argv()[:3]) for e in examples()]
    for expected in (
        "codex-ml train -cn",
        "codex-ml train -m",
        "codex-ml evaluate",
        "codex-ml generate",
    ):
        assert any(s.startswith(expected) for s in shown), expected
    assert any("training.resume=" in e.command for e in train_examples())


def test_the_guide_sets_nothing_the_test_changes() -> None:
    changed = {override.split("=", 1)[0] for override in SMALLER}
    for example in train_examples():
        for word in example.argv()[2:]:
            assert word.split("=", 1)[0].lstrip("+") not in changed, (example.line, word)


def _hydra_args(argv: Sequence[str]) -> tuple[str, list[str]]:
    """The config name and the overrides of ``codex-ml train ARGS``, the first sweep value each."""
    config_name, overrides, words = "train", [], list(argv[2:])
    while words:
        word = words.pop(0)
        if word in ("-cn", "--config-name"):
            config_name = words.pop(0)
        elif word in ("-m", "--multirun"):
            continue
        elif not word.startswith("hydra."):
            key, _, value = word.partition("=")
            overrides.append(f"{key}={value.split(',')[0]}")
    return config_name, overrides


@pytest.mark.parametrize(
    "example", [e for e in train_examples() if e.status == 0], ids=lambda e: f"line{e.line}"
)
def test_every_train_example_composes_and_checks(example: Example) -> None:
    config_name, overrides = _hydra_args(example.argv())
    with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
        cfg = compose(config_name, overrides=[*overrides, *SMALLER])
    p = plan(resolve(cfg))
    assert p.specs["model"].name


def _matches(expected: str, actual: str) -> bool:
    def squeeze(text: str) -> str:
        return " ".join(text.split())

    pattern = ".*".join(re.escape(part) for part in squeeze(expected).split("..."))
    return re.fullmatch(pattern, squeeze(actual)) is not None


def _output_lines(result: subprocess.CompletedProcess) -> list[str]:
    # Progress bars rewrite their line with \r: each rewrite counts as a line.
    return re.split(r"[\r\n]+", result.stdout) + re.split(r"[\r\n]+", result.stderr)


def _missing(expected: Sequence[str], lines: Sequence[str]) -> str | None:
    """The first expected line not found after the previous one, or None."""
    position = 0
    for want in expected:
        if want.strip() == "...":
            continue
        while position < len(lines) and not _matches(want, lines[position]):
            position += 1
        if position == len(lines):
            return want
        position += 1
    return None


_PRELUDE = """
set -o pipefail
SMALLER=({smaller})
codex-ml() {{
    if [ "$1" = train ]; then set -- "$@" "${{SMALLER[@]}}"; fi
    {python} -m codex_ml.cli "$@"
}}
"""


@pytest.mark.slow
def test_the_console_examples_run(tmp_path: Path, artefact_root: Path) -> None:
    prelude = _PRELUDE.format(
        smaller=" ".join(shlex.quote(o) for o in SMALLER), python=shlex.quote(sys.executable)
    )
    env = cli_env(CODEX_ML_PROJECT_ROOT=str(artefact_root))
    for example in examples():
        result = subprocess.run(
            ["bash", "-c", prelude + example.command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        where = f"{GUIDE.name}:{example.line}: {example.command}\n{describe(result)}"
        assert result.returncode == example.status, where
        assert "Traceback" not in result.stderr, where
        missing = _missing(example.expected, _output_lines(result))
        assert missing is None, f"{where}\n--- not printed:\n{missing}"
