"""Faults around discovery: the index file, the autoload switch, keys and what listings print.

- The discovery index (a marshal file under ``$CODEX_ML_CACHE_DIR``) replaced by
  a FIFO, by 5 bytes that claim a 2**31-item tuple, by a huge sparse file or by
  a directory is rebuilt, never read (a FIFO used to hang every command, the 5
  bytes to make every command raise ``MemoryError``); a symlink planted where
  the index's temporary file goes is never written through.
- ``CODEX_ML_DISABLE_PLUGIN_AUTOLOAD`` disables autoload for any non-empty
  value but ``0`` and ``false`` (``y``, ``2`` and ``true`` used not to).
- A plugin's fullwidth ``\\uff50\\uff50\\uff4c`` is ``ppl``, ``ppl\\u200b`` and a key holding
  ``\\n`` are refused, and ``plugins list`` escapes what it prints.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from codex_ml.cli import plugins as plugins_cli
from codex_ml.plugins import discovery
from codex_ml.registry import registries, reload

from . import report
from .conftest import ImportLog, InstallFaults
from .faults import METRICS, PLUGINS, hook_module, install

# -- the index -------------------------------------------------------------------------------------

#: Damage the index of a fresh process (``PLACE`` is a statement using ``index``), then list.
INDEX_PROBE = """
import json, os, resource
from codex_ml.plugins import discovery
# A tuple of 2**31 items would need 16 GiB: cap the address space so that trusting the
# index fails fast with MemoryError rather than paging (the fault this guards against).
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
index = discovery._index_path(discovery._index_identity(discovery._search_paths()))
os.makedirs(os.path.dirname(index), exist_ok=True)
{place}
import codex_ml.registry as r
keys = [k for k in r.list_metrics() if k.startswith("rf_")]
again = discovery.rescan()
print(json.dumps({{"keys": keys, "regular": os.path.isfile(index) and not os.path.islink(index),
                  "from_index": again.from_index}}))
"""

DAMAGE = {
    "a FIFO": "os.mkfifo(index)",
    "5 bytes claiming a 2**31-item tuple": (
        "open(index, 'wb').write(b'(' + (0x7FFFFFFF).to_bytes(4, 'little'))"
    ),
    "a 300 MB sparse file": "open(index, 'wb').truncate(300 << 20)",
    "a symlink to a file": "open(index + '.victim', 'w').write('x'); "
    "os.symlink(index + '.victim', index)",
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("damage", DAMAGE, ids=str)
def test_anything_but_a_sane_regular_file_in_place_of_the_index_is_rebuilt(
    damage: str, tmp_path: Path, import_log: ImportLog, run_python: Callable[..., object]
) -> None:
    site = tmp_path / "site"
    install(
        site,
        "rf-indexed",
        "1.0",
        entry_points={METRICS: {"rf_indexed": "rf_indexed:build"}},
        modules={"rf_indexed": "def build():\n    return len\n"},
        log=import_log.path,
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    past = 1_000_000_000  # old enough for the index to be written (the racy-timestamp rule)
    for path in (cwd, site, *site.iterdir(), *site.glob("*/*")):
        os.utime(path, (past, past))
    report.record("faults_injected")
    result = run_python(
        INDEX_PROBE.format(place=DAMAGE[damage]),
        sys_path=[site],
        cwd=cwd,
        env={"CODEX_ML_CACHE_DIR": str(tmp_path / "cache"), "CODEX_ML_DISCOVERY_CACHE": None},
        timeout=60,
    )
    out = json.loads(result.stdout.splitlines()[-1])  # type: ignore[attr-defined]
    assert out["keys"] == ["rf_indexed"]
    assert out["regular"], "the damaged index was not replaced by a good one"
    assert out["from_index"], "the rebuilt index is not read back"
    if damage.startswith("a symlink"):
        (victim,) = (tmp_path / "cache").glob("*.victim")
        assert victim.read_text() == "x"
    report.record("runs_survived")


def test_the_index_is_never_written_through_a_planted_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every name the temporary file could have had (the old, predictable one) is planted."""
    cache = tmp_path / "cache"
    cache.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    monkeypatch.setenv("CODEX_ML_CACHE_DIR", str(cache))
    identity = discovery._index_identity(discovery._search_paths())
    index = discovery._index_path(identity)
    os.symlink(victim, f"{index}.{os.getpid()}.{threading.get_ident()}.tmp")
    os.symlink(victim, index)
    scan = discovery.Scan(())
    discovery._write_index(index, identity, scan, {})
    report.record("faults_injected")
    assert victim.read_text() == "precious"
    assert os.path.isfile(index) and not os.path.islink(index)
    assert discovery._read_index(index, identity) is not None
    report.record("runs_survived")


# -- the autoload switch ---------------------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("value", "disabled"),
    [
        *[("y", True), ("2", True), ("true", True), ("TRUE", True), (" off ", True)],
        *[("0", False), ("false", False), (" False ", False), ("", False)],
    ],
)
def test_any_value_but_0_or_false_disables_autoload(
    value: str,
    disabled: bool,
    install_faults: InstallFaults,
    import_log: ImportLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install_faults()
    monkeypatch.setenv("CODEX_ML_DISABLE_PLUGIN_AUTOLOAD", value)
    reload()
    listed = registries["metric"].list()
    if disabled:
        report.record("blocked_imports", len(import_log.modules()))
        assert import_log.modules() == []
        assert "rf_healthy_hook_metric" not in listed and "ppl" in listed
    else:
        assert "rf_healthy_hook_metric" in listed
        assert "rf_healthy_hooks" in import_log.modules()
    monkeypatch.delenv("CODEX_ML_DISABLE_PLUGIN_AUTOLOAD")
    reload()
    report.record("bad_inputs_tried")


# -- keys, and what listings print -----------------------------------------------------------------

FORGED_KEYS = hook_module(
    """
def build():
    return len


def odd():
    return len


odd.__qualname__ = "odd\\nmetric  rf_forged_row  builtin\\x1b[2J"


@hookimpl
def codex_ml_register_metrics():
    return {
        "\\uff50\\uff50\\uff4c": build,  # fullwidth: reads as the catalogue's ppl
        "ppl\\u200b": build,  # prints as ppl
        "rf_forged\\nppl": build,  # would print a second ppl row
        "rf_odd_target": odd,  # its target (module:qualname) holds a newline and an escape
    }
"""
)


@pytest.mark.timeout(120)
def test_look_alike_keys_are_one_key_or_refused_and_the_listing_escapes_what_it_prints(
    tmp_path: Path,
    import_log: ImportLog,
    on_sys_path: Callable[..., None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    install(
        tmp_path / "site",
        "rf-forger",
        "1.0",
        entry_points={PLUGINS: {"rf_forger": "rf_forger"}},
        modules={"rf_forger": FORGED_KEYS},
        log=import_log.path,
    )
    on_sys_path(tmp_path / "site")
    report.record("faults_injected")
    report.record("bad_inputs_tried", 4)
    metrics = registries["metric"]
    assert [key for key in metrics.list() if "pl" in key] == ["ppl"]  # one ppl, ambiguous now
    assert metrics.describe("ppl").status == "ambiguous"
    bad = [p.message for p in metrics.problems() if "rf_forger" in p.message]
    assert len(bad) == 2 and all("keys must hold only visible characters" in m for m in bad)

    capsys.readouterr()
    assert plugins_cli.run(["list", "metric"]) == 0
    out = capsys.readouterr()
    rows = out.out.splitlines()
    assert "\x1b" not in out.out + out.err and "\u200b" not in out.out + out.err
    assert len([row for row in rows if row.split(" ", 1)[0] == "ppl"]) == 1
    assert not [row for row in rows if "rf_forged_row" in row and not row.startswith("rf_odd")]
    (odd,) = [row for row in rows if row.startswith("rf_odd_target")]
    assert "odd\\nmetric  rf_forged_row  builtin\\x1b[2J" in odd
    assert "'ppl\\u200b'" in out.err and "'rf_forged\\nppl'" in out.err  # the warnings

    assert plugins_cli.run(["show", "metric", "rf_odd_target"]) == 0
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "rf_forged_row" in shown
    assert not [line for line in shown.splitlines() if line.startswith("metric  rf_forged_row")]
    report.record("runs_survived")
