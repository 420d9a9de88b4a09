"""The ``files`` data loader (one record per file) and the skip counts every loader now keeps.

A source tree's ``__init__.py`` is a file like any other; only hidden files,
exact shard markers, excluded files and other suffixes are passed over when
a path is resolved, and the ``files`` loader passes over files that are no
text to train on (empty, not UTF-8, binary, too large). None of it is silent:
the records count each reason, ``codex-ml prepare`` and ``train`` print the
counts, and the token store's header keeps them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codex_ml.data.records import Records
from codex_ml.data.sources import resolve_files, skipped_phrase
from codex_ml.registry import get_data_loader, list_data_loaders
from codex_ml.run.prepare import skipped_files

PY_FILES = {
    "pkg/__init__.py": '"""The package."""\n',
    "pkg/core.py": "def answer():\n    return 42\n",
    "pkg/sub/__init__.py": "from .deep import thing\n",
    "pkg/sub/deep.py": "thing = 'deep'\r\n",  # line endings are kept as written
    "pkg/_private.py": "SECRET = 1\n",
    "setup.py": "print('setup')\n",
}


def make_tree(root: Path) -> Path:
    """A small source tree: Python files, and one of each kind of file that is skipped."""
    files = {
        **PY_FILES,
        "pkg/tests/test_core.py": "assert True\n",  # excluded by "**/tests/**"
        "pkg/__pycache__/core.cpython-311.pyc": b"\xa7\r\r\n\x00\x00binary",  # other suffix
        "README.md": "# readme\n",  # other suffix
        "_SUCCESS": "",  # a marker
        ".hidden.py": "hidden = True\n",  # hidden
        ".git/hooks/pre-commit.py": "hook = 1\n",  # under a hidden folder
    }
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8"))
    return root


def test_files_is_a_catalogue_data_loader() -> None:
    assert "files" in list_data_loaders()


def test_each_python_file_is_one_record_in_sorted_path_order(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    records = get_data_loader("files", path=str(tree), suffixes=[".py"], exclude=["**/tests/**"])
    assert isinstance(records, Records)
    assert list(records) == [PY_FILES[name] for name in sorted(PY_FILES, key=Path)]
    assert records.skipped == {"hidden": 2, "marker": 1, "excluded": 1, "suffix": 2}
    assert [str(f.relative_to(tree)) for f in records.files] == sorted(PY_FILES, key=Path)


def test_a_suffix_may_be_given_without_its_dot_or_as_one_string(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    dotted = list(get_data_loader("files", path=tree, suffixes=[".PY"]))
    assert list(get_data_loader("files", path=tree, suffixes="py")) == dotted
    assert len(dotted) == len(PY_FILES) + 1  # the test file too: nothing excluded


def test_files_that_are_no_text_are_skipped_and_counted_while_read(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_text("kept\n")
    (tree / "empty.txt").write_text("  \n")
    (tree / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (tree / "nul.txt").write_bytes(b"text\x00more\n")
    (tree / "big.txt").write_text("x" * 100)
    (tree / "bom.txt").write_bytes("\ufeffno mark\n".encode())
    records = get_data_loader("files", path=tree, max_record_bytes=64)
    assert records.skipped == {}  # nothing is read before the records are iterated
    assert list(records) == ["kept\n", "no mark\n"]
    assert records.skipped == {"empty": 1, "too_large": 1, "not_utf8": 1, "binary": 1}
    assert list(records) == ["kept\n", "no mark\n"]  # a second pass counts afresh
    assert records.skipped == {"empty": 1, "too_large": 1, "not_utf8": 1, "binary": 1}
    with_blank = get_data_loader("files", path=tree, skip_blank=False)
    assert "  \n" in list(with_blank) and "empty" not in with_blank.skipped


def test_records_are_streamed_and_read_afresh(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.py").write_text("first\n")
    records = get_data_loader("files", path=tree)
    (tree / "a.py").write_text("changed\n")  # the call read nothing yet
    assert list(records) == ["changed\n"]
    assert list(get_data_loader("files", path=tree, max_records=1)) == ["changed\n"]


def test_exclude_globs_are_relative_to_the_root(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for name in ["build/gen.js", "src/build/keep.js", "src/app.js", "src/app.min.js", "tests/t.js"]:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(f"// {name}\n")

    def kept(*exclude: str) -> list[str]:
        records = get_data_loader("files", path=tree, exclude=list(exclude))
        return [str(f.relative_to(tree)) for f in records.files]

    everything = ["build/gen.js", "src/app.js", "src/app.min.js", "src/build/keep.js", "tests/t.js"]
    assert kept() == everything
    # A name without a slash matches at any depth (a folder: all under it), as in .gitignore ...
    assert kept("build", "*.min.js") == ["src/app.js", "tests/t.js"]
    # ... and one with a slash (a leading one included) from the root only.
    assert kept("/build") == everything[1:]
    assert kept("**/tests/**", "src/*.js") == ["build/gen.js", "src/build/keep.js"]
    assert get_data_loader("files", path=tree, exclude=["src"]).skipped == {"excluded": 3}


def test_a_glob_is_taken_as_written_less_markers_and_excluded_files(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    records = get_data_loader("files", path=f"{tree}/**/*", exclude=["**/__pycache__/**"])
    names = [str(f.relative_to(tree)) for f in records.files]
    assert "README.md" in names and "pkg/__init__.py" in names  # no suffix filter for a glob
    assert "_SUCCESS" not in names and not any(n.startswith(".") for n in names)
    assert records.skipped == {"marker": 1, "excluded": 1}


def test_one_named_file_is_read_whatever_its_name(tmp_path: Path) -> None:
    marker = tmp_path / ".config.py"
    marker.write_text("hidden but named\n")
    records = get_data_loader("files", path=marker, suffixes=[".rs"])
    assert list(records) == ["hidden but named\n"] and records.skipped == {}


def test_nothing_left_is_an_error_that_says_what_was_skipped(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    with pytest.raises(FileNotFoundError, match=r"ending in \.rs .*skipped 12 files"):
        get_data_loader("files", path=tree, suffixes=[".rs"])
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "a.pyc").write_bytes(b"\x00\x01")
    with pytest.raises(ValueError, match=r"yields no records: skipped 1 file \(1 binary\)"):
        list(get_data_loader("files", path=tmp_path / "bin"))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"suffixes": [".py", ""]}, "suffixes must be a list of non-empty strings"),
        ({"exclude": [3]}, "exclude must be a list of non-empty strings"),
        ({"max_record_bytes": 0}, "max_record_bytes must be a positive int"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, kwargs: dict, needle: str) -> None:
    make_tree(tmp_path)
    with pytest.raises(ValueError, match=needle):
        get_data_loader("files", path=tmp_path, **kwargs)


# --- every loader: `_` is no longer a marker, and what is skipped is counted ---------------------


def test_lines_over_a_directory_reads_underscore_files_and_counts_the_rest(tmp_path: Path) -> None:
    # Before: every path part starting with "_" was dropped, so _notes.txt and the whole
    # __data__ folder were lost without a word. Only exact markers are skipped now.
    (tmp_path / "__data__").mkdir()
    (tmp_path / "__data__" / "b.txt").write_text("in a dunder folder\n")
    (tmp_path / "_notes.txt").write_text("underscore file\n")
    (tmp_path / "a.txt").write_text("plain\n")
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / "_common_metadata").write_text("")
    (tmp_path / ".swap.txt").write_text("hidden\n")
    records = get_data_loader("lines", path=str(tmp_path))
    assert list(records) == ["in a dunder folder", "underscore file", "plain"]
    assert records.skipped == {"hidden": 1, "marker": 2}


def test_structured_loaders_count_files_of_other_suffixes(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n')
    (tmp_path / "notes.txt").write_text("not a shard\n")
    (tmp_path / "_metadata").write_text("")
    records = get_data_loader("jsonl", path=str(tmp_path))
    assert list(records) == ["one"]
    assert records.skipped == {"marker": 1, "suffix": 1}
    assert resolve_files(tmp_path / "a.jsonl", loader="jsonl").skipped == {}


def test_skip_counts_read_as_one_phrase() -> None:
    assert skipped_phrase({}) == "" and skipped_phrase({"hidden": 0}) == ""
    assert skipped_phrase({"suffix": 2, "hidden": 1}) == (
        "skipped 3 files (1 hidden, 2 wrong suffix)"
    )
    assert skipped_phrase({"not_utf8": 1}) == "skipped 1 file (1 not UTF-8)"
    # A third-party loader's plain iterable counts nothing.
    assert skipped_files(["a", "b"], None) == {}


# --- codex-ml prepare and train -----------------------------------------------------------------


@pytest.mark.timeout(300)
def test_prepare_and_train_print_the_skipped_files_and_the_store_keeps_them(
    tmp_path: Path,
) -> None:
    from cli_helpers import QUICK, Command, describe

    tree = make_tree(tmp_path / "tree")
    (tree / "pkg" / "empty.py").write_text("")
    env = {"CODEX_ML_CACHE_DIR": str(tmp_path / "cache")}
    args = ("data=files", f"data.path={tree}", "data.suffixes=[.py]", "run.eval_fraction=0.2")
    line = "data: skipped 6 files (2 hidden, 1 marker, 2 wrong suffix, 1 empty)"
    first = Command(["prepare", *args], tmp_path, env).run()
    assert first.returncode == 0, describe(first)
    assert line in first.stdout
    facts = json.loads(Command(["prepare", "--json", *args], tmp_path, env).run().stdout)
    assert not facts["built"]  # the store's header kept the counts
    expected = {"hidden": 2, "marker": 1, "suffix": 2, "empty": 1}
    assert facts["skipped_files"] == expected
    assert sum(facts["records"].values()) == len(PY_FILES) + 1  # the test file: not excluded
    header = json.loads((Path(facts["path"]) / "header.json").read_text())
    assert header["skipped_files"] == expected
    run_dir = tmp_path / "run"
    small = (*QUICK, "training.block_size=8")  # the tree is a few hundred bytes
    trained = Command(["train", f"hydra.run.dir={run_dir}", *small, *args], tmp_path, env).run()
    assert trained.returncode == 0, describe(trained)
    assert line in trained.stdout
    data = json.loads((run_dir / "summary.json").read_text())["data"]
    assert data["skipped_files"] == expected == data["store"]["skipped_files"]
