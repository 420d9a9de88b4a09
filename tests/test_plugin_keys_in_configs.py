"""Issue 18: any registry key is a config choice, plugin faults travel with the run.

A third-party distribution (written by hand into a site folder, as pip would
install it) gives a data loader, a tokenizer, a callback and a metric by entry
point, plus a hook module that raises at import. Each key is chosen by name in
``codex-ml train`` exactly as a built-in one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from cli_helpers import SRC_DIR, Command, assert_user_error, describe
from conftest import write_distribution

LOADER = '''
from pathlib import Path


def build(path: str, upper: bool = False, repeat: int = 1):
    """Each line of a file, upper-cased on request.

    Args:
        path: the text file to read.
        upper: upper-case every record.
    """
    for _ in range(repeat):
        for line in Path(path).read_text().splitlines():
            if line.strip():
                yield line.upper() if upper else line
'''

TOKENIZER = '''
class Chars:
    """Lower-case characters, pad/bos/eos at the end."""

    def __init__(self, alphabet: str = "abcdefghijklmnopqrstuvwxyz .,!?ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
        self.table = {c: i for i, c in enumerate(alphabet)}
        self.inverse = {i: c for c, i in self.table.items()}
        self.pad_id, self.bos_id, self.eos_id = len(alphabet), len(alphabet) + 1, len(alphabet) + 2
        self.vocab_size = len(alphabet) + 3

    def encode(self, text):
        return [self.table[c] for c in text if c in self.table]

    def decode(self, ids):
        return "".join(self.inverse.get(int(i), "") for i in ids)
'''

CALLBACK = '''
import json
import os


class Boom:
    """Writes each logged step to a file."""

    def __init__(self, x: int = 0):
        self.x = x

    def on_log(self, run, record):
        with open(os.environ["GLOBEX_LOG"], "a") as out:
            out.write(json.dumps({"x": self.x, "step": record["step"]}) + "\\n")
'''

METRIC = '''
def build(scale: float = 1.0):
    """Mean length of the predictions, scaled."""

    def mean_length(preds, targets=None):
        return scale * sum(map(len, preds)) / max(1, len(preds))

    return mean_length
'''

BROKEN_HOOKS = """
raise RuntimeError("the user's own tracker cannot start")
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("globex-site")
    write_distribution(
        root,
        "globex-components",
        entry_points={
            "codex_ml.data_loaders": {"globex-lines": "globex_loader:build"},
            "codex_ml.tokenizers": {"globex-chars": "globex_tokenizer:Chars"},
            "codex_ml.callbacks": {"acme-boom": "globex_callback:Boom"},
            "codex_ml.metrics": {"globex-length": "globex_metric:build"},
        },
        modules={
            "globex_loader": LOADER,
            "globex_tokenizer": TOKENIZER,
            "globex_callback": CALLBACK,
            "globex_metric": METRIC,
        },
    )
    return root


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("broken-site")
    write_distribution(
        root,
        "globex-tracker",
        version="2.0",
        entry_points={"codex_ml.plugins": {"globex_tracker": "globex_tracker_hooks"}},
        modules={"globex_tracker_hooks": BROKEN_HOOKS},
    )
    return root


def cli(tmp_path: Path, *sites: Path, **env: str) -> Callable[..., object]:  # noqa: F821
    def run(*args: str):  # type: ignore[no-untyped-def]
        paths = os.pathsep.join([str(SRC_DIR), *map(str, sites)])
        return Command(list(args), tmp_path, {"PYTHONPATH": paths, **env}).run()

    return run


QUICK = (
    "model=offline/minilm",
    "training.max_steps=3",
    "training.batch_size=2",
    "training.block_size=16",
    "training.eval_every=3",
    "training.eval_max_batches=1",
    "run.eval_max_tokens=64",
    "run.sample_prompts=[]",
    "run.progress=false",
)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "x.txt"
    path.write_text("".join(f"the quick brown fox number {i} jumps.\n" for i in range(200)))
    return path


def test_a_plugin_loader_is_chosen_by_key_with_its_own_defaults(
    tmp_path: Path, site: Path, corpus: Path
) -> None:
    run = cli(tmp_path, site)
    shown = run(
        "train", "data=globex-lines", f"data.path={corpus}", "data.upper=true", "--cfg", "job"
    )
    assert shown.returncode == 0, describe(shown)
    data = yaml.safe_load(shown.stdout)["data"]
    assert data == {"name": "globex-lines", "path": str(corpus), "upper": True, "repeat": 1}
    result = run("train", f"hydra.run.dir={tmp_path / 'run'}", *QUICK, "data=globex-lines",
                 f"data.path={corpus}", "data.upper=true")  # fmt: skip
    assert result.returncode == 0, describe(result)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["components"]["data"]["key"] == "globex-lines"
    assert summary["components"]["data"]["distribution"] == "globex-components"
    assert summary["components"]["data"]["kwargs"]["upper"] is True


def test_a_required_parameter_left_unset_is_named_before_anything_exists(
    tmp_path: Path, site: Path
) -> None:
    result = cli(tmp_path, site)("train", f"hydra.run.dir={tmp_path / 'run'}", "data=globex-lines")
    assert_user_error(result, "train", "data.path is required by data_loader 'globex-lines'")
    assert not (tmp_path / "run").exists()


def test_a_plugin_tokenizer_callback_and_metric_by_key_in_one_run(
    tmp_path: Path, site: Path, corpus: Path
) -> None:
    log = tmp_path / "boom.jsonl"
    result = cli(tmp_path, site, GLOBEX_LOG=str(log))(
        "train", f"hydra.run.dir={tmp_path / 'run'}", *QUICK, "training.log_every=1",
        "tokenizer=globex-chars", "data=globex-lines", f"data.path={corpus}",
        "callbacks=[csv,acme-boom]", "callbacks.acme-boom.x=7", "metrics=[ppl,globex-length]",
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["components"]["tokenizer"]["key"] == "globex-chars"
    assert summary["components"]["callbacks.acme-boom"]["distribution"] == "globex-components"
    assert set(summary["metrics"]) == {"ppl", "globex-length"}
    assert isinstance(summary["metrics"]["ppl"], float)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and {r["x"] for r in rows} == {7}
    assert (tmp_path / "run" / "metrics.csv").is_file()  # the built-in preset beside it


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("data=globex-lnes", ("data=globex-lnes", "Did you mean data=globex-lines?")),
        ("callbacks=[csv,acme-bom]", ("'acme-bom'", "Did you mean acme-boom?")),
        ("tokenizer=globex-char", ("Did you mean tokenizer=globex-chars?",)),
        ("metrics=[ppl,globex-lenght]", ("Did you mean globex-length?",)),
    ],
)
def test_an_unknown_name_suggests_presets_and_registry_keys(
    tmp_path: Path, site: Path, override: str, needles: tuple[str, ...]
) -> None:
    result = cli(tmp_path, site)("train", override)
    message = assert_user_error(result, "train", *needles)
    for hydra_words in ("Could not load", "Config search path", "HYDRA_FULL_ERROR"):
        assert hydra_words not in message


def test_name_alone_with_a_preset_that_does_not_fit_says_to_choose_the_group(
    tmp_path: Path, site: Path, corpus: Path
) -> None:
    result = cli(tmp_path, site)("train", "data.name=globex-lines", f"data.path={corpus}")
    assert_user_error(result, "train", "data.name=globex-lines", "Use data=globex-lines")


def test_show_preset_of_a_plugin_key_is_usable_with_cd(
    tmp_path: Path, site: Path, corpus: Path
) -> None:
    run = cli(tmp_path, site)
    preset = run("plugins", "show", "data_loader", "globex-lines", "--preset")
    assert preset.returncode == 0, describe(preset)
    assert "path: ???  # str, required, the text file to read." in preset.stdout
    assert "upper: false  # bool, upper-case every record." in preset.stdout
    (tmp_path / "mine" / "data").mkdir(parents=True)
    (tmp_path / "mine" / "data" / "mine.yaml").write_text(
        preset.stdout.replace("path: ???", f"path: {corpus}")
    )
    result = run("train", "-cd", str(tmp_path / "mine"), "data=mine", "--cfg", "job")
    assert result.returncode == 0, describe(result)
    assert yaml.safe_load(result.stdout)["data"]["path"] == str(corpus)


def test_a_hook_plugin_that_fails_is_told_in_every_run(
    tmp_path: Path, site: Path, broken_site: Path, corpus: Path
) -> None:
    run = cli(tmp_path, site, broken_site)
    result = run("train", f"hydra.run.dir={tmp_path / 'run'}", *QUICK)
    assert result.returncode == 0, describe(result)
    warned = [line for line in result.stderr.splitlines() if "globex_tracker" in line]
    assert len(warned) == 1 and "globex-tracker 2.0" in warned[0], result.stderr
    assert "the user's own tracker cannot start" in warned[0]
    assert "globex-tracker" in (tmp_path / "run" / "train.log").read_text()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert any("globex-tracker" in fault for fault in summary["faults"])
    for command in (("prepare",), ("generate", str(tmp_path / "run"), "--prompt", "the")):
        other = (
            run(*command, "--max-new-tokens", "2") if command[0] == "generate" else run(*command)
        )
        assert other.returncode == 0, describe(other)
        assert "plugin fault" in other.stderr and "globex-tracker" in other.stderr


def test_strict_plugins_refuses_a_faulty_plugin_before_a_run_directory(
    tmp_path: Path, broken_site: Path
) -> None:
    result = cli(tmp_path, broken_site)(
        "train", f"hydra.run.dir={tmp_path / 'run'}", "run.strict_plugins=true"
    )
    assert_user_error(result, "train", "run.strict_plugins", "globex-tracker")
    assert not (tmp_path / "run").exists()
