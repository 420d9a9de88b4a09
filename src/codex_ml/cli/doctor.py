"""``codex-ml plugins doctor``: load every entry, and say what is wrong and what to do.

A built-in entry whose optional extra is not installed (``gpt2-offline``
without ``transformers``) is reported as needing that extra, with the install
command: an install step, not a fault, so it does not fail the command. The
report is built once as data and written as text or, with ``--json``, as JSON.
"""

from __future__ import annotations

import json
from typing import Any

from codex_ml.cli.listing import distinct_problems, shown

#: An import slower than this is named (a warning, not a failure).
SLOW_IMPORT_SECONDS = 1.0


def report() -> dict[str, Any]:
    """Every check, in the order the text output prints them."""
    from codex_ml.plugins.discovery import shadowed_distributions
    from codex_ml.registry import plugin_source, registries

    problems = distinct_problems(list(registries.values()))
    host = plugin_source.host()
    slow_plugins = [
        {"plugin": info.describe(), "seconds": host.import_seconds.get(info.name, 0.0)}
        for info in host.plugins()
        if host.import_seconds.get(info.name, 0.0) >= SLOW_IMPORT_SECONDS
    ]
    shadowed = [
        {"distribution": name, "used": used, "ignored": ignored}
        for name, used, ignored in shadowed_distributions()
    ]
    entries = [entry for registry in registries.values() for entry in _check(registry)]
    faults = len(problems) + sum(e["status"] in ("failed", "ambiguous") for e in entries)
    return {
        "ok": faults == 0,
        "faults": faults,
        "needs_extra": sum(e["status"] == "needs-extra" for e in entries),
        "problems": problems,
        "slow_plugins": slow_plugins,
        "shadowed": shadowed,
        "entries": entries,
    }


def _check(registry: Any) -> list[dict[str, Any]]:
    """One record per key of ``registry``: ok, failed, ambiguous or needs-extra."""
    from codex_ml.extras import install_hint, missing_for
    from codex_ml.plugins.guard import describe_error
    from codex_ml.registry import RegistryError, RegistryMissingExtraError

    ambiguous = registry.ambiguous()  # once: a plugin may give thousands of keys
    records = [
        {"kind": registry.kind, "key": key, "status": "ambiguous", "providers": providers}
        for key, providers in ambiguous.items()
    ]
    for key in registry.list():
        if key in ambiguous:
            continue
        entry = registry.describe(key)
        record: dict[str, Any] = {"kind": registry.kind, "key": key, "source": entry.source}
        record.update(plugin=entry.plugin, distribution=entry.distribution, version=entry.version)
        record["target"] = entry.target
        missing = missing_for(entry.target) if entry.source == "builtin" else None
        try:
            if missing is None:
                registry.get(key)
        except RegistryMissingExtraError as exc:
            missing = (exc.module, exc.extra)
        except RegistryError as exc:
            record.update(status="failed", error=str(exc))
            if exc.__cause__ is not None:
                record["cause"] = describe_error(exc.__cause__)
            records.append(record)
            continue
        if missing is not None:
            module, extra = missing
            record.update(status="needs-extra", extra=extra, module=module)
            record["install"] = f'pip install "codex-ml[{extra}]"'
            record["message"] = install_hint(module, extra)
        else:
            seconds = registry.describe(key).load_seconds or 0.0
            record.update(status="ok", load_seconds=seconds)
        records.append(record)
    return records


def write_text(data: dict[str, Any]) -> None:
    """The report for a person: one line per check, faults first."""
    for message in data["problems"]:
        print(f"FAIL  {shown(message)}")
    for slow in data["slow_plugins"]:
        print(f"slow  {shown(slow['plugin'])} took {slow['seconds']:.1f} s to import")
    for item in data["shadowed"]:
        print(
            f"note  {shown(item['distribution'])} is installed twice: {shown(item['used'])} "
            f"is used, {shown(item['ignored'])} is ignored"
        )
    for record in data["entries"]:
        kind, key, status = record["kind"], record["key"], record["status"]
        if status == "ambiguous":
            print(f"FAIL  {kind} {key!r} is ambiguous:")
            for provider in record["providers"]:
                print(f"        - {shown(provider)}")
        elif status == "failed":
            print(f"FAIL  {shown(record['error'])}")
            if "cause" in record:
                print(f"        caused by {shown(record['cause'])}")
        elif status == "needs-extra":
            print(
                f"need  {kind} {shown(key)} needs the {record['extra']} extra: "
                f"{record['install']} ({record['module']} is not installed)"
            )
        else:
            print(f"ok    {kind} {shown(key)}")
            seconds = record["load_seconds"]
            if seconds >= SLOW_IMPORT_SECONDS and record["source"] != "builtin":
                where = shown(
                    f"{record['plugin']!r} ({record['distribution']} {record['version']})"
                )
                print(f"slow  {kind} {key!r} from {where} took {seconds:.1f} s to import")
    needs = data["needs_extra"]
    if needs:
        print(f"\n{needs} entr{'y needs' if needs == 1 else 'ies need'} an extra (see 'need').")
    if data["faults"]:
        print(f"\n{data['faults']} problem(s) found.")
    else:
        print("\nall entries load." if not needs else "\nall installed entries load.")


def run(*, as_json: bool) -> int:
    """Exit status 1 on any fault or ambiguity; a missing extra is not a fault."""
    data = report()
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        write_text(data)
    return 0 if data["ok"] else 1
