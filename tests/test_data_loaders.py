"""The built-in streaming data loaders: jsonl, csv, parquet, hf-datasets (and lines' shards).

Each promise of the data guide is a test: a path may be a file, a directory of
shards or a glob, read in sorted order; records stream (nothing is read until
they are iterated, and each pass reads afresh); every bad input names the
file and where in it, and what to do.
"""

from __future__ import annotations

import builtins
import csv
import gzip
import json
from pathlib import Path

import pytest

from codex_ml.data import JSONLineError, MissingFieldError, Records, RecordTooLargeError
from codex_ml.registry import get_data_loader, list_data_loaders
from codex_ml.resources import offline_data_dir

SAMPLES = offline_data_dir() / "formats"
ROWS = [{"text": f"record number {i}", "meta": {"body": f"nested {i}"}, "n": i} for i in range(6)]


def read(key: str, path: Path | str, **kwargs: object) -> list[str]:
    return list(get_data_loader(key, path=str(path), **kwargs))


def write_jsonl(path: Path, rows: list[dict], *, compress: bool = False) -> Path:
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["n", "text"])
        for row in rows:
            writer.writerow([row["n"], row["text"]])
    return path


def write_parquet(path: Path, rows: list[dict], row_group_size: int = 2) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"n": [r["n"] for r in rows], "text": [r["text"] for r in rows],
                      "meta": [r["meta"] for r in rows]})  # fmt: skip
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


TEXTS = [r["text"] for r in ROWS]


def test_every_format_is_a_catalogue_key() -> None:
    assert {"lines", "jsonl", "csv", "parquet", "hf-datasets"} <= set(list_data_loaders())


@pytest.mark.parametrize(
    ("key", "sample"),
    [("jsonl", "sample.jsonl"), ("csv", "sample.csv"), ("parquet", "sample.parquet"),
     ("hf-datasets", "sample.jsonl"), ("hf-datasets", "sample.parquet")],
)  # fmt: skip
def test_each_loader_reads_its_shipped_sample(key: str, sample: str) -> None:
    records = get_data_loader(key, path=str(SAMPLES / sample))
    assert isinstance(records, Records)
    texts = list(records)
    assert len(texts) == 40 and all(isinstance(t, str) and t for t in texts)
    assert texts[0].startswith("In the time of the great drought")


def test_jsonl_dotted_text_field_and_gzip(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl.gz", ROWS, compress=True)
    assert read("jsonl", tmp_path / "a.jsonl.gz") == TEXTS
    assert read("jsonl", tmp_path / "a.jsonl.gz", text_field="meta.body")[1] == "nested 1"


def test_shards_in_a_directory_and_a_glob_are_read_in_sorted_order(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    # Written out of order, with a marker and a hidden file that are not data.
    write_jsonl(shards / "part-002.jsonl", ROWS[4:])
    write_jsonl(shards / "part-000.jsonl", ROWS[:2])
    write_jsonl(shards / "part-001.jsonl.gz", ROWS[2:4], compress=True)
    (shards / "_SUCCESS").write_text("")
    (shards / ".part-003.jsonl").write_text('{"text": "hidden"}\n')
    assert read("jsonl", shards) == TEXTS
    assert read("jsonl", shards / "part-00[02].jsonl") == TEXTS[:2] + TEXTS[4:]
    assert read("hf-datasets", f"{shards}/*.jsonl") == TEXTS[:2] + TEXTS[4:]


def test_lines_reads_shards_too(tmp_path: Path) -> None:
    for name, text in [("b.txt", "second\n"), ("a.txt", "first\n")]:
        (tmp_path / name).write_text(text)
    assert read("lines", tmp_path) == ["first", "second"]
    assert read("lines", tmp_path / "*.txt") == ["first", "second"]


def test_records_stream_and_are_read_afresh_on_each_pass(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", ROWS[:2])
    records = get_data_loader("jsonl", path=str(path))
    path.write_text("not json at all\n")  # the call read nothing yet ...
    with pytest.raises(JSONLineError):
        list(records)
    write_jsonl(path, ROWS[2:3])
    assert list(records) == [TEXTS[2]]  # ... and each pass reads the file again


def test_csv_header_delimiter_quoted_newlines(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.tsv", ROWS, delimiter="\t")
    assert read("csv", path, delimiter="\t") == TEXTS
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('text,n\n"two\nlines, one field",1\nplain,2\n')
    assert read("csv", quoted) == ["two\nlines, one field", "plain"]


def test_parquet_streams_row_groups_and_reads_struct_fields(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "a.parquet", ROWS)
    assert read("parquet", path) == TEXTS
    assert read("parquet", path, text_field="meta.body")[-1] == "nested 5"


def test_hf_datasets_reads_a_saved_dataset_dict_split(tmp_path: Path) -> None:
    import datasets

    folder = tmp_path / "saved"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(ROWS[:4]),
            "test": datasets.Dataset.from_list(ROWS[4:]),
        }
    ).save_to_disk(str(folder))
    assert read("hf-datasets", folder) == TEXTS[:4]
    assert read("hf-datasets", folder, split="test") == TEXTS[4:]
    with pytest.raises(ValueError, match=r"no split 'validation'.*'train', 'test'"):
        read("hf-datasets", folder, split="validation")


def test_hf_datasets_never_asks_the_hub_for_a_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="data file not found: imdb"):
        get_data_loader("hf-datasets", path="imdb")


# --- errors that name the file, the place and the fix ------------------------------------


def test_a_line_that_is_not_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "cut off\n')
    with pytest.raises(JSONLineError, match=r"bad.jsonl, line 2: not JSON") as caught:
        read("jsonl", path)
    assert caught.value.line_number == 2


def test_a_missing_text_field_lists_the_fields_that_line_has(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "ok"}, {"body": "x", "label": 1}])
    with pytest.raises(MissingFieldError) as caught:
        read("jsonl", path)
    message = str(caught.value)
    assert "a.jsonl, line 2" in message and "'body', 'label'" in message
    assert isinstance(caught.value, ValueError)  # reported as a user error, one paragraph
    numbers = write_jsonl(tmp_path / "b.jsonl", [{"text": 7}])
    with pytest.raises(ValueError, match=r"b\.jsonl, line 1: text_field='text' is a int"):
        read("jsonl", numbers)


def test_a_missing_column_lists_the_columns(tmp_path: Path) -> None:
    parquet = write_parquet(tmp_path / "a.parquet", ROWS)
    with pytest.raises(ValueError, match=r"no column 'body'.*'n', 'text', 'meta'"):
        read("parquet", parquet, text_field="body")
    table = write_csv(tmp_path / "a.csv", ROWS)
    with pytest.raises(ValueError, match=r"no column 'body' in the header row.*'n', 'text'"):
        read("csv", table, text_field="body")


@pytest.mark.parametrize("key", ["lines", "jsonl", "csv"])
def test_a_record_over_max_record_bytes_names_file_and_byte_offset(
    key: str, tmp_path: Path
) -> None:
    path = tmp_path / "big.txt"
    head = {"lines": "short\n", "jsonl": '{"text": "short"}\n', "csv": "text\nshort\n"}[key]
    path.write_text(head + "x" * 5000)  # no line break at the end, as in a dump
    with pytest.raises(RecordTooLargeError) as caught:
        read(key, path, max_record_bytes=1000)
    assert caught.value.offset == len(head)
    assert str(path) in str(caught.value) and f"byte {len(head)}" in str(caught.value)
    assert "max_record_bytes" in str(caught.value)


def test_dev_zero_is_a_record_size_error_not_a_memory_error() -> None:
    with pytest.raises(RecordTooLargeError, match="/dev/zero: the record that starts at byte 0"):
        read("lines", "/dev/zero", max_record_bytes=1 << 20)


def test_no_matching_files_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no file matches"):
        get_data_loader("jsonl", path=str(tmp_path / "*.jsonl"))
    with pytest.raises(FileNotFoundError, match=r"no data files ending in \.parquet"):
        get_data_loader("parquet", path=str(tmp_path))


def test_a_missing_extra_names_the_install_command(monkeypatch) -> None:
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    for name in [m for m in list(__import__("sys").modules) if m.startswith("pyarrow")]:
        monkeypatch.delitem(__import__("sys").modules, name)
    with pytest.raises(ImportError, match=r'pip install "codex-ml\[data\]"') as caught:
        get_data_loader("parquet", path=str(SAMPLES / "sample.parquet"))
    assert isinstance(caught.value, ValueError)  # one paragraph on the command line


def test_listing_the_loaders_imports_no_heavy_dependency() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, codex_ml.registry as r; r.list_data_loaders(); "
        "print(sorted(m for m in ('pyarrow', 'datasets', 'numpy', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
