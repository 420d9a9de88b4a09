"""From a checked plan to its token store: ``codex-ml prepare``, and ``train`` before training.

The store is named by a fingerprint of everything its ids depend on (the
tokenizer, the data loader's key, provider, kwargs and files, the split
settings, the store format and the codex-ml version) and lives under
``$CODEX_ML_CACHE_DIR/tokens/<fingerprint>/`` unless ``data.store=DIR`` names
its folder. ``data.eval_path=`` names an explicit evaluation source, read by the
same loader with the same kwargs; then ``run.eval_fraction`` is not used and
every training record is trained on.

Under ``torchrun`` rank 0 opens or builds the store while the other ranks wait
at a barrier (a key in torchrun's own rendezvous store, which rank 0 sets once
the store is complete, or to its error if building failed); then every rank
maps the same files.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_ml.config import ConfigError
from codex_ml.run.assemble import Plan, build

#: ``data.*`` keys that codex-ml reads itself (see ``RESERVED`` in run/assemble.py).
STORE_KEY = "store"
EVAL_PATH_KEY = "eval_path"
#: How long the other ranks wait for rank 0 to build a store.
BARRIER_TIMEOUT_S = float(os.environ.get("CODEX_ML_STORE_WAIT_S", 24 * 3600))


@dataclass(frozen=True)
class Prepared:
    """A run's opened token store, whether this call built it, and how long it took."""

    store: Any  # codex_ml.data.store.TokenStore
    built: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """What ``codex-ml prepare --json`` prints and ``summary.json`` records."""
        store = self.store
        return {
            "path": str(store.path),
            "fingerprint": store.fingerprint,
            "built": self.built,
            "seconds": round(self.seconds, 3),
            "dtype": store.dtype,
            "size_bytes": store.size_bytes(),
            "tokens": {s: store.tokens(s) for s in ("train", "eval")},
            "records": {s: store.records(s) for s in ("train", "eval")},
        }


def default_store_root() -> Path:
    """``$CODEX_ML_CACHE_DIR/tokens`` (or the XDG cache's ``codex-ml/tokens``)."""
    from codex_ml.data.store import default_root

    return default_root()


def prepare(p: Plan, tokenizer: Any, *, progress: bool = True) -> Prepared:
    """Open the run's token store, or build it (rank 0 only under torchrun)."""
    from codex_ml.data.store import check_store, open_or_build

    started = time.perf_counter()
    request = _request(p, tokenizer)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and rank != 0:
        _wait_for_rank_zero(request.fingerprint)
        store = check_store(request.folder, request.fingerprint)
        return Prepared(store, False, time.perf_counter() - started)
    try:
        store, built = open_or_build(
            request.folder,
            request.fingerprint,
            request.records,
            tokenizer,
            request.meta,
            progress=progress,
            note=lambda message: print(f"codex-ml: {message}", file=sys.stderr),
        )
    except BaseException as exc:
        if world > 1:
            _tell_the_others(request.fingerprint, f"error: {' '.join(str(exc).split())}")
        raise
    if world > 1:
        _tell_the_others(request.fingerprint, "ok")
    return Prepared(store, built, time.perf_counter() - started)


@dataclass(frozen=True)
class _Request:
    folder: Path
    fingerprint: str
    meta: dict[str, Any]
    records: Any  # () -> Iterable[(held_out, text)]


def _request(p: Plan, tokenizer: Any) -> _Request:
    """Where the store is, what it is a function of, and how to read its records."""
    from codex_ml import __version__
    from codex_ml.data.split import assign, check_eval_fraction
    from codex_ml.data.store.fingerprint import FORMAT, digest, tokenizer_fingerprint

    node = p.config["data"]
    eval_path = node.get(EVAL_PATH_KEY)
    train = build(p, "data")
    try:
        fraction = check_eval_fraction(p.run.get("eval_fraction", 0.1))
    except ValueError as exc:
        raise ConfigError(str(exc), where="run.eval_fraction") from None
    seed = int(p.run.get("seed", 0))
    data = {"train": _data_fingerprint(p, train)}
    if eval_path not in (None, ""):
        held_out = _eval_source(p)
        data["eval"] = _data_fingerprint(p, held_out, path=str(eval_path))
        split: dict[str, Any] = {"eval_path": str(eval_path)}

        def records() -> Iterator[tuple[bool, str]]:
            yield from ((False, text) for text in train)
            yield from ((True, text) for text in held_out)
    else:
        split = {"eval_fraction": fraction, "seed": seed}

        def records() -> Iterator[tuple[bool, str]]:
            return assign(train, eval_fraction=fraction, seed=seed)

    meta = {
        "format": FORMAT,
        "codex_ml": __version__,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "data": data,
        "split": split,
    }
    fingerprint = digest(meta)
    named = node.get(STORE_KEY)
    folder = Path(os.path.expanduser(str(named))) if named else default_store_root() / fingerprint
    return _Request(folder.absolute(), fingerprint, meta, records)


def _eval_source(p: Plan) -> Iterable[str]:
    """The data loader again, with ``path=data.eval_path``."""
    from codex_ml.config import build_component

    spec = p.specs["data"]
    kwargs = {**spec.kwargs, "path": str(p.config["data"][EVAL_PATH_KEY])}
    return build_component(
        type(spec)(spec.kind, spec.name, kwargs, spec.where), p.factories["data"]
    )


def _data_fingerprint(p: Plan, records: Any, path: str | None = None) -> dict[str, Any]:
    import hashlib

    from codex_ml.data.store.fingerprint import data_fingerprint, files_in_kwargs
    from codex_ml.registry import get_registry

    spec = p.specs["data"]
    kwargs = dict(spec.kwargs) if path is None else {**spec.kwargs, "path": path}
    entry = get_registry("data_loader").describe(spec.name).as_dict()
    provider = f"{entry.get('distribution')} {entry.get('version')} {entry.get('target')}"
    own = getattr(records, "fingerprint", None)
    if callable(own):  # the loader's output knows what it depends on
        return {**data_fingerprint(spec.name, kwargs, [], provider), "own": str(own())}
    files = getattr(records, "files", None)
    found = data_fingerprint(
        spec.name, kwargs, files if files is not None else files_in_kwargs(kwargs), provider
    )
    if files is None and isinstance(records, list):  # in memory anyway: hash the text itself
        text = hashlib.sha256()
        for record in records:
            text.update(str(record).encode("utf-8", "surrogatepass") + b"\0")
        found["content"] = text.hexdigest()
    return found


def _barrier_key(fingerprint: str) -> str:
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return f"codex_ml/token-store/{attempt}/{fingerprint}"


def _rendezvous() -> Any:
    """A client of torchrun's rendezvous store (the one ``init_process_group`` joins)."""
    from datetime import timedelta

    from torch.distributed import TCPStore

    return TCPStore(
        os.environ.get("MASTER_ADDR", "localhost"),
        int(os.environ["MASTER_PORT"]),
        is_master=False,
        timeout=timedelta(seconds=BARRIER_TIMEOUT_S),
    )


def _tell_the_others(fingerprint: str, outcome: str) -> None:
    _rendezvous().set(_barrier_key(fingerprint), outcome)


def _wait_for_rank_zero(fingerprint: str) -> None:
    key = _barrier_key(fingerprint)
    store = _rendezvous()
    store.wait([key])
    outcome = store.get(key).decode("utf-8", "replace")
    if outcome != "ok":
        # A ValueError: rank 0's error is the user's to fix, and this rank says the same.
        raise ValueError(
            f"rank 0 could not prepare the token store: {outcome.removeprefix('error: ')}"
        )


@dataclass(frozen=True)
class RunData:
    """What a training run gets from its data: the trainer's inputs and what scoring reads."""

    train: Any  # a TokenSplit, or a list of text records for a trainer without token ids
    eval: Any | None  # likewise; None when nothing is held out
    eval_texts: list[str]  # held-out records as text (bounded), for the text metrics
    summary: dict[str, Any]  # summary.json's "data"


def run_data(p: Plan, tokenizer: Any, *, progress: bool) -> RunData:
    """The token store's splits for a trainer that reads token ids, else records as before.

    A trainer says it reads token ids with a true ``reads_token_ids`` attribute
    (the functional trainer does); any other trainer keeps getting lists of
    text records, split by the same rule, since it may rely on them.
    """
    from codex_ml.data.store import TokenSplit
    from codex_ml.run.assemble import split_records

    if not getattr(p.factories["training"], "reads_token_ids", False):
        train, held_out = split_records(
            build(p, "data"),
            eval_fraction=float(p.run.get("eval_fraction", 0.1)),
            seed=int(p.run.get("seed", 0)),
        )
        counts = {"records": len(train) + len(held_out), "train": len(train), "eval": len(held_out)}
        return RunData(train, held_out or None, held_out, counts)
    prepared = prepare(p, tokenizer, progress=progress)
    store = prepared.store
    records = {split: store.records(split) for split in ("train", "eval")}
    summary = {
        "records": records["train"] + records["eval"],
        "train": records["train"],
        "eval": records["eval"],
        "store": prepared.as_dict(),
    }
    held_out = TokenSplit(store, "eval") if store.tokens("eval") else None
    return RunData(TokenSplit(store, "train"), held_out, store.eval_texts(), summary)
