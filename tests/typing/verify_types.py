"""Fail unless pyright's type-completeness score of the public API reaches the floor.

``pyright --verifytypes`` exits non-zero for anything under 100%, and has no
threshold of its own; this runs it, prints the score and the symbols still
lacking a known type, and exits 1 under ``--floor`` (0.95 by default).
Run from the repository root, in the environment where codex-ml is installed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--floor", type=float, default=0.95, help="lowest passing score (0-1)")
    parser.add_argument("--package", default="codex_ml")
    args = parser.parse_args(argv)
    command = [
        sys.executable, "-m", "pyright", "--verifytypes", args.package,
        "--ignoreexternal", "--outputjson",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(done.stdout)["typeCompleteness"]
    except (ValueError, KeyError):
        print(f"pyright --verifytypes gave no report:\n{done.stdout}{done.stderr}", file=sys.stderr)
        return 2
    score = report["completenessScore"]
    unknown = [
        symbol["name"]
        for symbol in report["symbols"]
        if symbol["isExported"] and not symbol["isTypeKnown"]
    ]
    for name in unknown:
        print(f"  not fully typed: {name}")
    verdict = "ok" if score >= args.floor else f"FAIL (under {args.floor:.0%})"
    print(f"type completeness of {args.package}: {score:.1%} ({len(unknown)} symbols) {verdict}")
    return 0 if score >= args.floor else 1


if __name__ == "__main__":
    sys.exit(main())
