"""The line data loaders: records, options, every error path and the shipped tiny corpus."""

from __future__ import annotations

import shutil

import pytest

from codex_ml import resources
from codex_ml.data import LineDecodeError, load_lines, load_tiny_corpus
from codex_ml.metrics import build_distinct_2


def _write(tmp_path, data: bytes, name="records.txt"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_records_are_lines_without_line_endings(tmp_path):
    path = _write(tmp_path, b"first\r\nsecond line\nthird\r\n")
    assert list(load_lines(path)) == ["first", "second line", "third"]
    assert list(load_lines(str(path))) == ["first", "second line", "third"]


def test_last_line_without_newline_and_inner_white_space_are_kept(tmp_path):
    path = _write(tmp_path, b"  indented\ttab \nlast")
    assert list(load_lines(path)) == ["  indented\ttab ", "last"]


def test_skip_blank(tmp_path):
    path = _write(tmp_path, b"a\n\n   \nb\n")
    assert list(load_lines(path)) == ["a", "b"]
    assert list(load_lines(path, skip_blank=False)) == ["a", "", "   ", "b"]


def test_max_records_stops_early(tmp_path):
    path = _write(tmp_path, b"".join(b"line %d\n" % i for i in range(100)))
    assert list(load_lines(path, max_records=3)) == ["line 0", "line 1", "line 2"]
    with pytest.raises(ValueError, match="max_records"):
        load_lines(path, max_records=0)


def test_shuffle_is_deterministic_with_the_seed(tmp_path):
    records = [f"record {i}" for i in range(50)]
    path = _write(tmp_path, "\n".join(records).encode())
    first = list(load_lines(path, shuffle=True, seed=3))
    assert first == list(load_lines(path, shuffle=True, seed=3))
    assert first != records and sorted(first) == sorted(records)
    assert list(load_lines(path, shuffle=True, seed=4)) != first
    assert list(load_lines(path)) == records  # no shuffle by default


def test_other_encodings_and_byte_order_mark(tmp_path):
    path = _write(tmp_path, "café\nnaïve\n".encode("latin-1"))
    assert list(load_lines(path, encoding="latin-1")) == ["café", "naïve"]
    bom = _write(tmp_path, "\ufeffhello\nworld\n".encode(), name="bom.txt")
    assert list(load_lines(bom)) == ["hello", "world"]


def test_missing_file_names_the_path_and_what_to_pass(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="path=") as info:
        load_lines(missing)
    assert str(missing) in str(info.value)


def test_a_directory_without_data_files_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="is a directory with no data files"):
        load_lines(tmp_path)


def test_records_are_read_lazily_and_afresh_on_every_iteration(tmp_path):
    path = _write(tmp_path, b"one\ntwo\n")
    records = load_lines(path)
    assert list(records) == ["one", "two"]
    path.write_bytes(b"three\n")
    assert list(records) == ["three"]  # nothing was held from the first pass


def test_decoding_error_names_path_line_and_encoding(tmp_path):
    path = _write(tmp_path, b"fine\nalso fine\nbroken \xff here\n")
    with pytest.raises(LineDecodeError, match="line 3: not valid utf-8") as info:
        list(load_lines(path))
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    assert (info.value.line_number, info.value.encoding) == (3, "utf-8")


def test_unsupported_or_unknown_encoding_is_a_clear_error(tmp_path):
    path = _write(tmp_path, b"text\n")
    with pytest.raises(ValueError, match="ASCII-compatible"):
        load_lines(path, encoding="utf-16")
    with pytest.raises(ValueError, match="unknown encoding 'klingon'"):
        load_lines(path, encoding="klingon")


@pytest.mark.parametrize(("data", "what"), [(b"", "empty"), (b"\n  \n\t\n", "only blank lines")])
def test_a_file_without_records_is_a_clear_error(tmp_path, data, what):
    path = _write(tmp_path, data)
    with pytest.raises(ValueError, match=what) as info:
        list(load_lines(path))
    assert str(path) in str(info.value)


def test_path_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="path="):
        load_lines(None)


@pytest.mark.timeout(30)
def test_a_10_mb_single_line_is_read_under_a_raised_cap(tmp_path):
    path = _write(tmp_path, b"x" * (10 * 1024 * 1024))
    (record,) = list(load_lines(path, max_record_bytes=16 * 1024 * 1024))
    assert len(record) == 10 * 1024 * 1024


# --- the tiny corpus ---------------------------------------------------------------------


def test_tiny_corpus_ships_and_is_big_and_varied():
    path = resources.offline_data_dir() / "tiny_corpus.txt"
    assert 60_000 <= path.stat().st_size <= 100_000
    records = load_tiny_corpus()
    assert len(records) >= 150
    assert len(set(records)) == len(records)  # no repeated paragraph
    assert build_distinct_2()(records) > 0.7


def test_tiny_corpus_shuffle_and_path_override(tmp_path):
    records = load_tiny_corpus()
    shuffled = load_tiny_corpus(shuffle=True, seed=1)
    assert shuffled == load_tiny_corpus(shuffle=True, seed=1)
    assert shuffled != records and sorted(shuffled) == sorted(records)
    own = _write(tmp_path, b"my corpus\n")
    assert load_tiny_corpus(path=own) == ["my corpus"]


def test_tiny_corpus_loads_from_the_wheel_layout(tmp_path, monkeypatch):
    # An installed wheel ships data/offline as codex_ml/_resources/data/offline.
    checkout_records = load_tiny_corpus()
    bundled = tmp_path / "site-packages" / "codex_ml" / "_resources" / "data" / "offline"
    bundled.mkdir(parents=True)
    shipped = bundled / "tiny_corpus.txt"
    shutil.copy(resources.offline_data_dir() / "tiny_corpus.txt", shipped)
    with shipped.open("a", encoding="utf-8") as handle:
        handle.write("A paragraph only the wheel copy has.\n")
    monkeypatch.setattr(resources, "offline_data_dir", lambda: bundled)
    assert load_tiny_corpus() == [*checkout_records, "A paragraph only the wheel copy has."]


def test_missing_tiny_corpus_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "offline_data_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match=r"tiny_corpus\.txt"):
        load_tiny_corpus()
