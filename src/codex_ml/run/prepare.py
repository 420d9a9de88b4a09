"""From a run's data source to its token store: ``codex-ml prepare``, and ``train`` before training.

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
maps the same files. What is read from a run's config is handed in as a
:class:`DataSource` (``codex_ml.run.assemble.data_source``), and the process's
rank as a :class:`~codex_ml.world.Process`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from codex_ml.config import ComponentSpec, ConfigError, build_component
from codex_ml.world import Process

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
        from codex_ml.data.store.layout import SPLITS

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
            "skipped_files": dict(store.header.get("skipped_files") or {}),
            **({"loss_tokens": {s: store.loss_tokens(s) for s in SPLITS}} if store.masked else {}),
        }


def default_store_root() -> Path:
    """``$CODEX_ML_CACHE_DIR/tokens`` (or the XDG cache's ``codex-ml/tokens``)."""
    from codex_ml.data.store import default_root

    return default_root()


@dataclass(frozen=True)
class DataSource:
    """What a run's token store is made from: its data loader, held-out source and split."""

    loader: ComponentSpec  # the data loader's key and kwargs (``data``)
    factory: Callable[..., Iterable[str]]  # the data loader's factory
    eval_path: str | None = None  # data.eval_path: the held-out records' own source
    store: str | None = None  # data.store: the store's folder, instead of the cache's
    eval_fraction: Any = 0.1  # run.eval_fraction (checked here)
    seed: int = 0  # run.seed: which records the split holds out

    def records(self, path: str | None = None) -> Iterable[str]:
        """The data loader's records (with ``path=`` another file, as for ``eval_path``)."""
        spec = self.loader
        if path is not None:
            spec = replace(spec, kwargs={**spec.kwargs, "path": path})
        records: Iterable[str] = build_component(spec, self.factory)
        return records


def prepare(
    source: DataSource, tokenizer: Any, *, process: Process, progress: bool = True
) -> Prepared:
    """Open the run's token store, or build it (rank 0 only under torchrun)."""
    from codex_ml.data.store import check_store, open_or_build

    started = time.perf_counter()
    request = _request(source, tokenizer)
    if process.distributed and not process.is_main:
        _wait_for_rank_zero(request.fingerprint, process)
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
        if process.distributed:
            _tell_the_others(request.fingerprint, f"error: {' '.join(str(exc).split())}", process)
        raise
    if process.distributed:
        _tell_the_others(request.fingerprint, "ok", process)
    return Prepared(store, built, time.perf_counter() - started)


@dataclass(frozen=True)
class TrainingCorpus:
    """The run's training records as text, streamed afresh each time it is iterated.

    What a tokenizer that trains reads (``codex_ml.run.tokenizer``);
    ``fingerprint`` is of the data and the split, as the token store's name is,
    so the same records give the same fingerprint.
    """

    fingerprint: str
    records: Callable[[], Iterable[tuple[bool, str]]]  # (held_out, text) pairs

    def __iter__(self) -> Iterator[str]:
        from codex_ml.data.chat import record_text

        for held_out, record in self.records():
            if not held_out:
                yield record_text(record)  # instruction examples as their text


def training_corpus(source: DataSource) -> TrainingCorpus:
    """The training split of ``source`` (the records the token store's train split holds)."""
    from codex_ml.data.store.fingerprint import digest

    split = _split(source)
    return TrainingCorpus(digest({"data": split.data, "split": split.settings}), split.records)


@dataclass(frozen=True)
class _Request:
    folder: Path
    fingerprint: str
    meta: dict[str, Any]
    records: Any  # () -> Iterable[(held_out, text)]


def _request(source: DataSource, tokenizer: Any) -> _Request:
    """Where the store is, what it is a function of, and how to read its records."""
    from codex_ml import __version__
    from codex_ml.data.store.fingerprint import FORMAT, digest, tokenizer_fingerprint

    split = _split(source)
    meta = {
        "format": FORMAT,
        "codex_ml": __version__,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "data": split.data,
        "split": split.settings,
    }
    template = _chat_template(source, tokenizer)
    if template is not None:  # chats rendered by it: their ids depend on it too
        meta["chat_template"] = template
    fingerprint = digest(meta)

    def records() -> Iterator[tuple[bool, str]]:
        yield from split.records()
        # Known once read, so in the header (written after the records) but not the fingerprint.
        meta["skipped_files"] = skipped_files(*split.sources)

    named = source.store
    folder = Path(os.path.expanduser(str(named))) if named else default_store_root() / fingerprint
    return _Request(folder.absolute(), fingerprint, meta, records)


@dataclass(frozen=True)
class _Split:
    data: dict[str, Any]  # the fingerprints of the records' sources
    settings: dict[str, Any]  # how the held-out records are chosen
    records: Callable[[], Iterable[tuple[bool, str]]]
    sources: tuple[Any, ...]  # the loaders' records, which count the files they passed over


def _split(source: DataSource) -> _Split:
    """The records of ``source`` as (held_out, text) pairs, and what they depend on."""
    from codex_ml.data.split import assign, check_eval_fraction

    eval_path = source.eval_path
    train = source.records()
    try:
        fraction = check_eval_fraction(source.eval_fraction)
    except ValueError as exc:
        raise ConfigError(str(exc), where="run.eval_fraction") from None
    seed = source.seed
    data = {"train": _data_fingerprint(source.loader, train)}
    if eval_path not in (None, ""):
        held_out = source.records(path=str(eval_path))
        data["eval"] = _data_fingerprint(source.loader, held_out, path=str(eval_path))
        split: dict[str, Any] = {"eval_path": str(eval_path)}

        def pairs() -> Iterator[tuple[bool, str]]:
            yield from ((False, text) for text in train)
            yield from ((True, text) for text in held_out)
    else:
        split = {"eval_fraction": fraction, "seed": seed}
        held_out = ()

        def pairs() -> Iterator[tuple[bool, str]]:
            return assign(train, eval_fraction=fraction, seed=seed)

    return _Split(data, split, pairs, (train, held_out))


def skipped_files(*sources: Any) -> dict[str, int]:
    """The files the data loader passed over, by reason, in ``sources`` together.

    A source that does not count them (a third-party loader's plain iterable)
    adds nothing.
    """
    from codex_ml.data.sources import add_counts

    return add_counts(*(getattr(source, "skipped", None) or {} for source in sources))


def _chat_template(source: DataSource, tokenizer: Any) -> str | None:
    """A digest of the tokenizer's chat template when the data's chats are rendered by it."""
    from codex_ml.data.chat import chat_template_identity
    from codex_ml.data.store.fingerprint import digest

    kwargs = source.loader.kwargs
    if not kwargs.get("messages_field") or kwargs.get("chat_template") is not None:
        return None
    identity = chat_template_identity(tokenizer)
    return None if identity is None else digest(identity)


def _data_fingerprint(spec: ComponentSpec, records: Any, path: str | None = None) -> dict[str, Any]:
    import hashlib

    from codex_ml.data.store.fingerprint import data_fingerprint, files_in_kwargs
    from codex_ml.registry import get_registry

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


def _barrier_key(fingerprint: str, process: Process) -> str:
    return f"codex_ml/token-store/{process.restart_count}/{fingerprint}"


def _rendezvous(process: Process) -> Any:
    """A client of torchrun's rendezvous store (the one ``init_process_group`` joins)."""
    from datetime import timedelta

    from torch.distributed import TCPStore

    if process.master_port is None:
        raise ValueError(
            f"rank {process.rank} of {process.world_size}: MASTER_PORT is not set, so the "
            "token store cannot be shared between the ranks; start the run with torchrun."
        )
    return TCPStore(
        process.master_addr,
        process.master_port,
        is_master=False,
        timeout=timedelta(seconds=BARRIER_TIMEOUT_S),
    )


def _tell_the_others(fingerprint: str, outcome: str, process: Process) -> None:
    _rendezvous(process).set(_barrier_key(fingerprint, process), outcome)


def _wait_for_rank_zero(fingerprint: str, process: Process) -> None:
    key = _barrier_key(fingerprint, process)
    store = _rendezvous(process)
    store.wait([key])
    outcome = store.get(key).decode("utf-8", "replace")
    if outcome != "ok":
        # A ValueError: rank 0's error is the user's to fix, and this rank says the same.
        raise ValueError(
            f"rank 0 could not prepare the token store: {outcome.removeprefix('error: ')}"
        )
