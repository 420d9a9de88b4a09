"""The events of a training run that plugins can watch: one table, and the run they see.

Each event reaches two kinds of observer the same way:

- a hook plugin's ``@hookimpl`` function named by :attr:`Event.hook` (pluggy
  passes only the arguments the function names, so ``def codex_ml_log(record)``
  works as well as ``def codex_ml_log(run, record)``);
- a callback object's method named by :attr:`Event.method`, called with
  :attr:`Event.arguments` in order (a callback may have any subset of methods).

A trainer reports what happens as plain records (``{"event": "log", ...}``);
:attr:`Event.record` is the record event an event is made from, and
:meth:`Event.arguments_of` the arguments it is given. ``train_start`` and
``train_end`` are codex-ml's own: it calls them around the trainer.

This module is pure Python (no pluggy, no typing import), like the rest of
``codex_ml.plugins``.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["EVENTS", "Event", "RunInfo", "event_of_record", "frozen"]


class Event:
    """One lifecycle event: its hook, its callback method, its arguments, its record event."""

    __slots__ = ("arguments", "hook", "method", "name", "record")

    def __init__(self, name: str, arguments: tuple[str, ...], record: str | None) -> None:
        self.name: str = name
        self.hook: str = f"codex_ml_{name}"
        self.method: str = f"on_{name}"
        self.arguments: tuple[str, ...] = arguments
        self.record: str | None = record

    def __repr__(self) -> str:
        return f"Event({self.name!r})"

    def arguments_of(self, run: RunInfo, record: Mapping[str, Any]) -> tuple[Any, ...]:
        """The call arguments for a trainer's record of this event."""
        if self.name == "log":
            return (run, dict(record))
        if self.name == "evaluate":  # the numbers and their step, without the event name
            return (run, {k: v for k, v in record.items() if k != "event"})
        if self.name == "checkpoint":
            return (run, Path(str(record["path"])))
        raise ValueError(f"{self.name} is not made from a trainer's record")


#: Every event, in the order a run goes through them.
EVENTS: tuple[Event, ...] = (
    Event("train_start", ("run",), None),
    Event("log", ("run", "record"), "log"),
    Event("evaluate", ("run", "metrics"), "eval"),
    Event("checkpoint", ("run", "path"), "checkpoint"),
    Event("train_end", ("run", "summary"), None),
)

_BY_RECORD: dict[str, Event] = {event.record: event for event in EVENTS if event.record}


def event_of_record(record: Mapping[str, Any]) -> Event | None:
    """The event a trainer's record reports (None: a record no observer is told about)."""
    return _BY_RECORD.get(record.get("event"))  # type: ignore[arg-type]


def frozen(value: Any) -> Any:
    """``value`` with every mapping read-only and every list a tuple, all the way down."""
    if isinstance(value, dict | MappingProxyType):
        return MappingProxyType({key: frozen(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(frozen(item) for item in value)
    return value


def plain(value: Any) -> Any:
    """The reverse of :func:`frozen`: dicts and lists again (for YAML, JSON, trackers)."""
    if isinstance(value, MappingProxyType | dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    return value


class RunInfo:
    """The run a hook or callback is told about; read-only, the same object for every event.

    ``run_dir`` is the run directory (rank 0 writes it; every rank is told it),
    ``config`` the resolved config as read-only plain data (secrets read from
    the environment redacted, as in ``config.yaml``), ``rank`` and
    ``world_size`` this process's place under ``torchrun`` (0 and 1 otherwise),
    ``is_main`` whether this is rank 0, the process that writes files.
    """

    __slots__ = ("config", "rank", "run_dir", "world_size")

    def __init__(
        self, run_dir: str | Path, config: Mapping[str, Any], *, rank: int = 0, world_size: int = 1
    ) -> None:
        object.__setattr__(self, "run_dir", Path(run_dir))
        object.__setattr__(self, "config", frozen(dict(config)))
        object.__setattr__(self, "rank", int(rank))
        object.__setattr__(self, "world_size", int(world_size))

    def __setattr__(self, attr: str, value: object) -> None:
        raise AttributeError(f"RunInfo is read-only; cannot set {attr!r}")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def plain_config(self) -> dict[str, Any]:
        """A fresh, mutable copy of :attr:`config` as dicts and lists."""
        return plain(self.config)

    def __repr__(self) -> str:
        where = str(self.run_dir)
        return f"RunInfo(run_dir={where!r}, rank={self.rank}, world_size={self.world_size})"
