"""``codex-ml plugins list | show | doctor | check``: what is installed, from where, does it work.

Everything printed here comes from installed distributions (keys, names,
versions, targets, error messages), so the text output escapes what does not
print: a name holding ``\\n`` or a terminal escape cannot forge a row or
repaint the screen. ``--json`` output is escaped by JSON itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from codex_ml.cli.helptext import plain
from codex_ml.cli.listing import distinct_problems, shown
from codex_ml.plugins.kinds import KINDS, kind_named


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codex-ml plugins", description=plain(__doc__))
    commands = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = commands.add_parser("list", help="a table of every key of every kind")
    listing.add_argument("kind", nargs="?", help="only this kind (e.g. metric or metrics)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = commands.add_parser("show", help="provenance, signature and docstring of one entry")
    show.add_argument("kind")
    show.add_argument("key")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument(
        "--preset",
        action="store_true",
        help="print a ready preset (YAML) for the key: save it as DIR/GROUP/mine.yaml",
    )
    check = commands.add_parser(
        "check", help="check that components keep their kind's contract; exit 1 on a failure"
    )
    check.add_argument(
        "names",
        nargs="*",
        metavar="KIND KEY",
        help="pairs of kind and key (default: every third-party key)",
    )
    check.add_argument("--kwargs", default="{}", help='JSON keyword arguments: \'{"path": "x"}\'')
    doctor = commands.add_parser(
        "doctor", help="load every entry; exit 1 on any failure or ambiguity"
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def run(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    if args.action == "check":
        from codex_ml.cli.check import run_checks

        return run_checks(args.names, args.kwargs)
    try:
        kinds = [kind_named(args.kind)] if getattr(args, "kind", None) else list(KINDS)
    except ValueError as exc:
        print(f"codex-ml plugins: {exc}", file=sys.stderr)
        return 2
    if args.action == "list":
        return _list(kinds, as_json=args.json)
    if args.action == "show" and args.preset:
        return _preset(kinds[0].name, args.key)
    if args.action == "show":
        return _show(kinds[0].name, args.key, as_json=args.json)
    from codex_ml.cli import doctor

    return doctor.run(as_json=args.json)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _list(kinds: Sequence[Any], *, as_json: bool) -> int:
    from codex_ml.extras import missing_for
    from codex_ml.registry import registries

    def needs(entry: Any) -> str | None:
        """The extra a built-in entry needs and lacks (checked without importing it)."""
        missing = missing_for(entry.target) if entry.source == "builtin" else None
        return missing[1] if missing else None

    def as_dict(entry: Any) -> dict[str, Any]:
        data = entry.as_dict()
        extra = needs(entry)
        if extra:  # only then: the listing of a complete install is unchanged
            data["needs_extra"] = extra
        return data

    selected = [registries[kind.name] for kind in kinds]
    if as_json:
        data: dict[str, Any] = {r.kind: [as_dict(e) for e in r.entries()] for r in selected}
        data["problems"] = distinct_problems(selected)
        print(json.dumps(data, indent=2))
        return 0
    for registry in selected:
        rows = [["KEY", "SOURCE", "PLUGIN / DISTRIBUTION", "VERSION", "TARGET"]]
        for entry in registry.entries():
            provider = entry.plugin or ""
            if entry.distribution and entry.distribution != entry.plugin:
                provider = f"{provider} / {entry.distribution}" if provider else entry.distribution
            source = entry.source + (" (ambiguous)" if entry.status == "ambiguous" else "")
            extra = needs(entry)
            if extra:
                source += f" (needs the {extra} extra)"
            row = [entry.key, source, provider, entry.version or "", entry.target or ""]
            rows.append([shown(cell) for cell in row])
        print(f"{registry.kind}s ({len(rows) - 1})")
        print(_table(rows) if len(rows) > 1 else "  (none)")
        print()
    for message in distinct_problems(selected):
        print(f"warning: {shown(message)}", file=sys.stderr)
    return 0


def _show(kind: str, key: str, *, as_json: bool) -> int:
    import inspect

    from codex_ml.registry import RegistryError, get_registry

    registry = get_registry(kind)
    try:
        entry = registry.describe(key)
    except (RegistryError, TypeError, ValueError) as exc:
        print(f"codex-ml plugins show: {shown(exc)}", file=sys.stderr)
        return 2  # a key the user can correct, like every other usage error
    data = entry.as_dict(location=True)
    try:
        factory = registry.get(key)
    except RegistryError as exc:
        data["error"] = str(exc)
    else:
        try:
            signature = inspect.signature(factory)
            if inspect.isclass(factory):  # calling a class returns an instance, not None
                signature = signature.replace(return_annotation=factory.__name__)
            data["signature"] = f"{key}{signature}"
        except (TypeError, ValueError):
            data["signature"] = None
        data["doc"] = inspect.getdoc(factory)
        data["status"] = "ambiguous" if entry.status == "ambiguous" else "loaded"
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        for name, value in data.items():
            if isinstance(value, list):
                value = "\n  " + "\n  ".join(map(shown, value))
            elif name == "doc" and value:  # a docstring's own lines are kept, and indented
                value = "\n  " + "\n  ".join(map(shown, str(value).splitlines()))
            elif value is not None:
                value = shown(value)
            print(f"{name}: {'' if value is None else value}")
    return 1 if "error" in data else 0


def _preset(kind: str, key: str) -> int:
    """``show KIND KEY --preset``: the key's implied preset as commented YAML."""
    from codex_ml.config.presets import factory_preset
    from codex_ml.registry import RegistryError
    from codex_ml.run.key_choices import preset_options

    group, skip, fixed = preset_options(kind)
    try:
        preset = factory_preset(kind, key, skip=skip, fixed=fixed)
    except (RegistryError, TypeError, ValueError) as exc:
        print(f"codex-ml plugins show: {shown(exc)}", file=sys.stderr)
        return 2
    alias = preset.key if group in ("metrics", "callbacks") else None
    sys.stdout.write(preset.yaml(group, alias=alias))
    return 0
