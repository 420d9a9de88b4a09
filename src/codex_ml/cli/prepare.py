"""``codex-ml prepare [--json] [OPTIONS] [OVERRIDES]``: build a run's token store ahead of time.

It takes the same config and overrides as ``codex-ml train`` (``-cn``, ``-cd``,
``data=...``, ``tokenizer=...``, ``run.eval_fraction=...``), so the store it
builds is the one that ``train`` with those arguments opens without
tokenising anything. It prints where the store is, its token counts, its size,
how long it took and the files the data loader skipped (by reason); ``--json``
prints the same as one JSON object.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from codex_ml.config import ConfigError
from codex_ml.data.sources import skipped_phrase

#: The config groups a store depends on (the split settings come from ``run``).
GROUPS = ("tokenizer", "data")


def run(argv: Sequence[str]) -> int:
    from codex_ml.cli.errors import report

    args = list(argv)
    as_json = "--json" in args
    args = [a for a in args if a != "--json"]
    try:
        prepared = _prepare(args, progress=not as_json)
    except Exception as exc:
        return report("prepare", exc)
    if prepared is None:
        return 0
    facts = prepared.as_dict()
    if as_json:
        print(json.dumps(facts, indent=2))
    else:
        _print(facts)
    return 0


def _prepare(args: list[str], *, progress: bool) -> Any:
    from codex_ml.cli.train import parse
    from codex_ml.run.assemble import GROUP_KINDS, data_source, plan, resolve
    from codex_ml.run.compose import compose_config
    from codex_ml.run.plugin_faults import checked_plugin_faults, warn
    from codex_ml.run.precheck import precheck
    from codex_ml.run.prepare import prepare
    from codex_ml.run.tokenizer import run_tokenizer
    from codex_ml.world import this_process

    invocation = parse(args)
    if invocation.help:
        from codex_ml.cli.helptext import plain

        print(plain(__doc__).strip())
        return None
    if invocation.multirun or invocation.show:
        raise ConfigError("codex-ml prepare takes neither -m nor --cfg.", where="-m")
    process = this_process()
    precheck(invocation.config_name, invocation.overrides, invocation.config_dirs)
    cfg = compose_config(invocation.config_name, invocation.overrides, invocation.config_dirs)
    config = resolve(cfg)
    # Every component the config names is checked (as train would), the store's groups required.
    checked = tuple(group for group in GROUP_KINDS if group in GROUPS or group in config)
    p = plan(config, groups=checked, load=False)
    warn("prepare", checked_plugin_faults(p.run))
    tokenizer = run_tokenizer(p)  # one that trains is trained (or found in the cache) first
    return prepare(
        data_source(p), tokenizer, process=process, progress=progress and sys.stderr.isatty()
    )


def _print(facts: dict[str, Any]) -> None:
    tokens = facts["tokens"]
    what = "built" if facts["built"] else "already there (nothing tokenised)"
    print(f"token store: {facts['path']}")
    print(
        f"  {tokens['train']:,} train + {tokens['eval']:,} eval tokens "
        f"({facts['records']['train']:,} + {facts['records']['eval']:,} records), "
        f"{facts['dtype']}, {facts['size_bytes'] / 1e6:,.1f} MB"
    )
    print(f"  {what} in {facts['seconds']:.2f}s; fingerprint {facts['fingerprint']}")
    skipped = skipped_phrase(facts.get("skipped_files") or {})
    if skipped:
        print(f"  data: {skipped}")
