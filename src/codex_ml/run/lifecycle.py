"""Telling a run's callbacks and lifecycle hooks what happens, each fault once.

The trainer reports records (``{"event": "log", ...}``) to the callables it is
given; :class:`Lifecycle` is one of them. It turns each record into its event
(:data:`codex_ml.plugins.lifecycle.EVENTS`) and calls every observer of that
event: the configured callbacks (``callbacks=[...]``) and the hook plugins'
``codex_ml_<event>`` implementations, in that order. ``train_start`` and
``train_end`` are called by the run itself, around the trainer.

Observers are third-party code, so every call goes through
:func:`~codex_ml.plugins.guard.guarded`. One that raises is reported once (a
warning on stderr and in ``train.log``, and in the summary's ``faults``), naming
its plugin and distribution, and is not called again in this run; the run goes
on. :class:`~codex_ml.training.StopTraining` is the exception: it is a request,
passed on to the trainer once every observer has seen the record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from codex_ml.config import ConfigError
from codex_ml.plugins.guard import describe_error, guarded
from codex_ml.plugins.lifecycle import EVENTS, Event, RunInfo, event_of_record
from codex_ml.run.runlog import describe_record
from codex_ml.training.errors import StopTraining

log: logging.Logger = logging.getLogger("codex_ml.run")

_BY_NAME = {event.name: event for event in EVENTS}


@dataclass
class Observer:
    """One callback or one hook plugin: who it is, and its function per event name."""

    label: str  # "callback 'csv' (csv, codex-ml 0.1.0)" or "plugin 'x' (dist 1.0)"
    calls: dict[str, Callable[..., Any]]
    what: dict[str, str]  # event name -> the method or hook called, for messages
    off: bool = False


@dataclass
class Lifecycle:
    """The record callable given to the trainer, and the run's start and end."""

    run: RunInfo
    observers: list[Observer]
    faults: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)  # log and eval records seen
    stop_request: StopTraining | None = None
    _stop_passed_on: bool = False

    @classmethod
    def for_run(cls, run: RunInfo, callbacks: Sequence[tuple[str, str, Any]]) -> Lifecycle:
        """The configured callbacks (alias, key, object) and every hook plugin's lifecycle hooks."""
        return cls(run, [*map(_callback_observer, callbacks), *_hook_observers()])

    # -- what the run calls --------------------------------------------------------------------

    def start(self) -> None:
        """``train_start``; a StopTraining here stops the run at its first record."""
        log.info("start: %s (rank %d of %d)", self.run.run_dir, self.run.rank, self.run.world_size)
        self._notify(_BY_NAME["train_start"], (self.run,), step=0)

    def __call__(self, record: Mapping[str, Any]) -> None:
        """A trainer's record: logged, passed to every observer, then any stop request raised."""
        if record.get("event") in ("log", "eval"):
            self.records.append(dict(record))
        line = describe_record(record)
        if line:
            log.info(line)
        event = event_of_record(record)
        if event is not None:
            self._notify(event, event.arguments_of(self.run, record), step=record.get("step"))
        if self.stop_request is not None and not self._stop_passed_on:
            self._stop_passed_on = True
            raise self.stop_request

    def end(self, summary: Mapping[str, Any]) -> None:
        """``train_end``, once, with the summary (a stop request this late changes nothing)."""
        self._notify(_BY_NAME["train_end"], (self.run, dict(summary)), step=summary.get("steps"))
        steps = summary.get("steps")
        log.info(
            "%s: %s%s",
            summary.get("status"),
            f"{steps} steps" if steps is not None else "before the first step",
            f" ({summary['error']})" if summary.get("error") else "",
        )

    @contextmanager
    def running(
        self, record_failure: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None
    ) -> Iterator[None]:
        """``train_start``, then the block; a block that raises ends the run with its failure.

        ``record_failure`` writes the failure's summary (rank 0's ``summary.json``)
        and returns it as written, which is what ``train_end`` is then given.
        """
        self.start()
        try:
            yield
        except BaseException as error:
            failed = self.failure_summary(error)
            self.end(record_failure(failed) if record_failure else failed)
            raise

    def report_plugin_faults(self, faults: Sequence[str]) -> None:
        """Discovery faults found before the run: logged (stderr, ``train.log``) and kept."""
        from codex_ml.run.plugin_faults import PREFIX

        for fault in faults:
            self.faults.append(PREFIX + fault)
            log.warning("%s%s", PREFIX, fault)

    def failure_summary(self, error: BaseException) -> dict[str, Any]:
        """What a run that raised can still say: status, error, its last step and numbers."""
        last = self.records[-1]["step"] if self.records else None
        return {
            "status": "interrupted" if isinstance(error, KeyboardInterrupt) else "failed",
            "error": describe_error(error),
            "run_dir": str(self.run.run_dir),
            "steps": last,
            "final_metrics": {},
            "faults": list(self.faults),
        }

    # -- calling observers ---------------------------------------------------------------------

    def _notify(self, event: Event, arguments: tuple[Any, ...], *, step: Any) -> None:
        for observer in self.observers:
            call = observer.calls.get(event.name)
            if call is None or observer.off:
                continue
            _, error = guarded(call, *arguments)
            if error is None:
                continue
            if isinstance(error, StopTraining):
                if self.stop_request is None and event.name != "train_end":
                    self.stop_request = error
                    log.info("stop requested by %s: %s", observer.label, error.reason)
                continue
            if isinstance(error, ConfigError):  # the user's setting is wrong: the run stops
                raise error
            observer.off = True
            where = f" at step {step}" if step is not None else ""
            message = (
                f"{observer.label} raised in {observer.what[event.name]}{where} and is switched "
                f"off for the rest of the run: {describe_error(error)}"
            )
            self.faults.append(message)
            log.warning(message)


def _callback_observer(configured: tuple[str, str, Any]) -> Observer:
    """An observer of a callback object's ``on_<event>`` methods (any subset of them)."""
    alias, key, callback = configured
    calls, what = {}, {}
    for event in EVENTS:
        method = getattr(callback, event.method, None)
        if callable(method):
            calls[event.name] = method
            what[event.name] = event.method
    return Observer(_callback_label(alias, key, callback), calls, what)


def _callback_label(alias: str, key: str, callback: Any) -> str:
    """``callback 'tb' (tensorboard from codex-ml 0.1.0)``: who to blame, by provenance."""
    from codex_ml.registry import RegistryError, get_registry

    try:
        info = get_registry("callback").describe(key)
    except (RegistryError, TypeError, ValueError):
        info = None
    if info is None or not info.distribution:
        return f"callback {alias!r} ({type(callback).__module__}.{type(callback).__qualname__})"
    version = f" {info.version}" if info.version else ""
    return f"callback {alias!r} ({info.key} from {info.distribution}{version})"


def _hook_observers() -> list[Observer]:
    """One observer per hook plugin that implements any lifecycle hook."""
    from codex_ml.registry import plugin_source

    host = plugin_source.host()
    by_plugin: dict[str, Observer] = {}
    for event in EVENTS:
        for info, impl in host.implementations(event.hook):
            observer = by_plugin.setdefault(info.name, Observer(info.describe(), {}, {}))
            observer.calls[event.name] = _hook_call(impl, event)
            observer.what[event.name] = event.hook
    return list(by_plugin.values())


def _hook_call(impl: Any, event: Event) -> Callable[..., Any]:
    """Call a pluggy implementation with the arguments it names, as pluggy itself would."""

    def call(*arguments: Any) -> Any:
        if impl.hookwrapper or impl.wrapper:
            raise TypeError(
                f"{event.hook} is called as a plain hook; a hookwrapper/wrapper implementation "
                "is not supported for lifecycle hooks"
            )
        given = dict(zip(event.arguments, arguments, strict=True))
        return impl.function(*(given[name] for name in impl.argnames))

    return call
