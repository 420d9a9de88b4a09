"""The figures of ``docs/reliability.md``, counted by the tests that produce them.

Each reliability test calls :func:`record` as it goes: one JSON line per count,
appended to a tally file, with the test that counted it. Nothing is written by
hand: a figure is the sum of what the tests saw. The tally file is
``$CODEX_ML_RELIABILITY_TALLY`` if set, else ``<tmp>/codex-ml-reliability/tally.jsonl``;
the suite empties it when a pytest session starts its first reliability test.

Run as a script after the tests to print the figures (exit status 1 if any data
was lost or any blocked code was imported, 2 if there is no tally)::

    python -m pytest tests/reliability
    python tests/reliability/report.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

#: figure -> its line in the report. The last two must stay at zero.
FIGURES = {
    "faults_injected": "faults injected",
    "runs_survived": "runs survived",
    "bad_inputs_tried": "bad inputs tried",
    "data_lost": "data lost (finished checkpoints lost or wrong)",
    "blocked_imports": "imports of blocked code",
}
MUST_BE_ZERO = ("data_lost", "blocked_imports")


def tally_path() -> Path:
    """Where the counts of this run go."""
    explicit = os.environ.get("CODEX_ML_RELIABILITY_TALLY")
    if explicit:
        return Path(explicit)
    return Path(tempfile.gettempdir()) / "codex-ml-reliability" / "tally.jsonl"


def reset() -> None:
    """Start a fresh tally (called once per pytest session)."""
    path = tally_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")


def record(figure: str, count: int = 1) -> None:
    """Add ``count`` to ``figure``, on behalf of the test that is running."""
    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}; the figures are {', '.join(FIGURES)}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a non-negative int, got {count!r}")
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
    path = tally_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:  # one short line: appends do not interleave
        handle.write(json.dumps({"figure": figure, "count": count, "test": test}) + "\n")


def _rows(path: Path | None) -> list[tuple[str, int, str]]:
    """``(figure, count, test)`` for every line of the tally."""
    rows = []
    for line in (path or tally_path()).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        rows.append((row["figure"], int(row["count"]), row["test"]))
    return rows


def read(path: Path | None = None) -> tuple[Counter[str], dict[str, set[str]]]:
    """Totals per figure, and the tests that counted each figure."""
    totals: Counter[str] = Counter({figure: 0 for figure in FIGURES})
    tests: dict[str, set[str]] = {figure: set() for figure in FIGURES}
    for figure, count, test in _rows(path):
        totals[figure] += count
        tests[figure].add(test)
    return totals, tests


def by_module(path: Path | None = None) -> dict[str, Counter[str]]:
    """Totals per figure for each test module."""
    modules: dict[str, Counter[str]] = {}
    for figure, count, test in _rows(path):
        modules.setdefault(Path(test.split("::")[0]).stem, Counter())[figure] += count
    return dict(sorted(modules.items()))


def format_report(path: Path | None = None) -> str:
    """The figures as the table pasted into ``docs/reliability.md``."""
    totals, tests = read(path)
    contributors = set().union(*tests.values())
    width = max(len(label) for label in FIGURES.values())
    lines = [f"codex-ml reliability figures ({len(contributors)} tests counted)"]
    for figure, label in FIGURES.items():
        checked = f"  (checked by {len(tests[figure])} tests)" if figure in MUST_BE_ZERO else ""
        lines.append(f"  {label:<{width}}  {totals[figure]:>6}{checked}")
    modules = by_module(path)
    name_width = max((len(module) for module in modules), default=len("by test module"))
    header = "".join(f"{figure.split('_')[0]:>9}" for figure in FIGURES)
    lines += ["", f"  {'by test module':<{name_width}}{header}"]
    for module, counts in modules.items():
        cells = "".join(f"{counts[figure]:>9}" for figure in FIGURES)
        lines.append(f"  {module:<{name_width}}{cells}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else tally_path()
    if not path.is_file() or not path.read_text(encoding="utf-8").strip():
        print(
            f"no tally at {path}: run `python -m pytest tests/reliability` first", file=sys.stderr
        )
        return 2
    print(format_report(path))
    totals, tests = read(path)
    if any(totals[figure] for figure in MUST_BE_ZERO) or not all(
        tests[figure] for figure in MUST_BE_ZERO
    ):
        return 1  # lost data, leaked imports, or a zero that nothing measured
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
