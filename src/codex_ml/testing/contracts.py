"""Check that a registered component keeps its kind's contract, before users hit it mid-run.

``check_component("tokenizer", "mine")`` builds the component from its
registry key (the factory gets ``**kwargs``) and exercises it on small inputs.
Every broken promise is collected, not just the first, and reported in one
:class:`AssertionError`, so a plugin's whole conformance test is one line::

    def test_my_tokenizer_keeps_the_contract():
        check_component("tokenizer", "mine")

A component that keeps every promise returns the list of what was checked.
The checks are what codex-ml itself relies on during a run (the trainer, the
token store, scoring and the lifecycle), on inputs small enough for a unit
test. torch is imported only for the kinds that need it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

__all__ = ["CHECKED_KINDS", "ContractReport", "NeedsArguments", "check_component"]

#: ASCII sentences every tokenizer must give back unchanged (lower case, so that a
#: case-folding tokenizer still qualifies: the promise is a lossless round trip of plain text).
SAMPLE_TEXTS = ("hello world.", "the quick brown fox jumps over the lazy dog!", "a, b, c?")
#: (prompt, completion) pairs for reward models.
SAMPLE_PAIRS = (("2 + 2 =", " 4"), ("Say hi.", " hi"), ("", "an empty prompt"))
#: How many records of a data loader are read and checked.
RECORDS_CHECKED = 50


class NeedsArguments(Exception):
    """The factory has a required parameter that the check cannot guess a value for."""

    def __init__(self, kind: str, key: str, names: list[str]) -> None:
        self.kind: str = kind
        self.key: str = key
        self.names: list[str] = names
        example = ", ".join(f'"{name}": ...' for name in names)
        super().__init__(
            f"{kind} {key!r} needs arguments: {', '.join(names)}. Pass them: "
            f"check_component({kind!r}, {key!r}, {', '.join(f'{n}=...' for n in names)}) "
            f"or codex-ml plugins check {kind} {key} --kwargs '{{{example}}}'."
        )


class ContractReport:
    """What was checked of one component, and every promise it broke."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind: str = kind
        self.key: str = key
        self.checked: list[str] = []
        self.broken: list[str] = []

    def expect(self, promise: str, held: bool, why: str = "") -> bool:
        """Record one promise; ``why`` says what was seen when it did not hold."""
        self.checked.append(promise)
        if not held:
            self.broken.append(f"{promise}: {why}" if why else promise)
        return held

    def attempt(self, promise: str, call: Callable[[], Any]) -> tuple[bool, Any]:
        """Run ``call``; an exception breaks ``promise`` (and is described, not raised)."""
        try:
            value = call()
        except Exception as error:  # a plugin may raise anything: that is the finding
            self.expect(promise, False, f"raised {type(error).__name__}: {error}")
            return False, None
        return True, value

    def raise_if_broken(self) -> None:
        if self.broken:
            lines = "\n".join(f"  - {item}" for item in self.broken)
            raise AssertionError(
                f"{self.kind} {self.key!r} breaks {len(self.broken)} of its kind's promises:\n"
                f"{lines}"
            )


def check_component(kind: str, key: str, /, **kwargs: Any) -> list[str]:
    """Build ``kind``/``key`` with ``kwargs`` and check its contract; return what was checked.

    Raises :class:`AssertionError` listing every broken promise, and
    :class:`NeedsArguments` when the factory requires a parameter not given.
    """
    from codex_ml.plugins.kinds import kind_named
    from codex_ml.registry import get_registry

    kind_name = kind_named(kind).name
    check = CHECKS.get(kind_name)
    if check is None:
        raise ValueError(f"there is no contract check for {kind_name} components yet")
    factory = get_registry(kind_name).get(key)
    missing = _required_parameters(factory, kwargs, EXTRA_ARGUMENTS.get(kind_name, ()))
    if missing:
        raise NeedsArguments(kind_name, key, missing)
    report = ContractReport(kind_name, key)
    check(report, factory, kwargs)
    report.raise_if_broken()
    return report.checked


def _required_parameters(factory: Any, given: dict[str, Any], supplied: Iterable[str]) -> list[str]:
    """Keyword parameters without a default that neither the caller nor the check gives."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return []
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [
        p.name
        for p in parameters
        if p.kind in plain
        and p.default is inspect.Parameter.empty
        and p.name not in given
        and p.name not in supplied
    ]


def _build(report: ContractReport, factory: Any, kwargs: dict[str, Any]) -> Any:
    ok, component = report.attempt("the factory builds the component", lambda: factory(**kwargs))
    return component if ok else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_float(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# -- tokenizer --------------------------------------------------------------------------------


def check_tokenizer(report: ContractReport, factory: Any, kwargs: dict[str, Any]) -> None:
    tokenizer = _build(report, factory, kwargs)
    if tokenizer is None:
        return
    vocab = getattr(tokenizer, "vocab_size", None)
    if not report.expect(
        "vocab_size is a positive int",
        _is_int(vocab) and vocab > 0,
        f"got {vocab!r}",
    ):
        return
    for name in ("pad_id", "eos_id", "bos_id"):
        value = getattr(tokenizer, name, None)
        report.expect(
            f"{name} is an int in [0, vocab_size={vocab})",
            _is_int(value) and 0 <= value < vocab,
            f"got {value!r}",
        )
    encoded: dict[str, list[int]] = {}
    for text in SAMPLE_TEXTS:
        ok, ids = report.attempt(f"encode({text!r}) works", lambda t=text: tokenizer.encode(t))
        if not ok:
            continue
        ids = list(ids)
        bad = [i for i in ids if not (_is_int(i) and 0 <= i < vocab)]
        if report.expect(
            f"encode({text!r}) gives ints in [0, vocab_size={vocab})",
            bool(ids) and not bad,
            f"got {bad[:5]!r}" if bad else "got no ids",
        ):
            encoded[text] = ids
            ok, back = report.attempt(
                f"decode(encode({text!r})) works", lambda i=ids: tokenizer.decode(i)
            )
            if ok:
                report.expect(
                    f"decode(encode({text!r})) gives the text back",
                    back == text,
                    f"got {back!r}",
                )
    batch_encode = getattr(tokenizer, "batch_encode", None)
    if callable(batch_encode) and len(encoded) == len(SAMPLE_TEXTS):
        _check_batch_encode(report, tokenizer, batch_encode, encoded)


def _check_batch_encode(
    report: ContractReport, tokenizer: Any, batch_encode: Any, encoded: dict[str, list[int]]
) -> None:
    texts = list(encoded)
    ok, batch = report.attempt("batch_encode(texts) works", lambda: batch_encode(texts))
    if not ok:
        return
    rows = batch.get("input_ids") if isinstance(batch, dict) else None
    masks = batch.get("attention_mask") if isinstance(batch, dict) else None
    if not report.expect(
        "batch_encode gives input_ids and attention_mask, a row per text",
        isinstance(rows, list)
        and isinstance(masks, list)
        and len(rows) == len(texts) == len(masks),
        f"got {type(batch).__name__} {list(batch)[:4] if isinstance(batch, dict) else ''}",
    ):
        return
    for text, row, mask in zip(texts, rows, masks, strict=True):
        real = [i for i, m in zip(row, mask, strict=False) if m]
        padding = [i for i, m in zip(row, mask, strict=False) if not m]
        report.expect(
            f"batch_encode agrees with encode for {text!r}",
            list(real) == encoded[text],
            f"got {list(real)[:8]} vs {encoded[text][:8]}",
        )
        report.expect(
            f"batch_encode pads {text!r} with pad_id={tokenizer.pad_id}",
            all(i == tokenizer.pad_id for i in padding) and len(row) == len(mask),
            f"padding {padding[:5]}",
        )


# -- model ------------------------------------------------------------------------------------


def check_model(report: ContractReport, factory: Any, kwargs: dict[str, Any]) -> None:
    import torch

    model = _build(report, factory, kwargs)
    if model is None:
        return
    vocab = _model_vocab(model, kwargs)
    batch, time = 2, 8
    torch.manual_seed(0)
    ids = torch.randint(0, vocab, (batch, time))
    ok, out = report.attempt("forward(input_ids) works", lambda: model(input_ids=ids))
    if not ok:
        return
    logits = getattr(out, "logits", None)
    shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else None
    report.expect(
        f"forward gives logits [batch={batch}, time={time}, vocab>={vocab}]",
        shape is not None and len(shape) == 3 and shape[:2] == (batch, time) and shape[2] >= vocab,
        f"got {shape or type(logits).__name__}",
    )
    ok, out = report.attempt(
        "forward(input_ids, labels) works", lambda: model(input_ids=ids, labels=ids)
    )
    loss = getattr(out, "loss", None) if ok else None
    if ok and report.expect(
        "forward with labels gives a finite scalar loss",
        isinstance(loss, torch.Tensor) and loss.numel() == 1 and bool(torch.isfinite(loss)),
        f"got {loss!r}",
    ):
        ok, _ = report.attempt("the loss backpropagates", loss.backward)
        if ok:
            trainable = [p for p in model.parameters() if p.requires_grad]
            flowing = [p for p in trainable if p.grad is not None and bool(p.grad.abs().sum() > 0)]
            report.expect(
                "gradients reach the trainable parameters",
                bool(trainable) and bool(flowing),
                f"{len(flowing)} of {len(trainable)} trainable tensors got a gradient",
            )


def _model_vocab(model: Any, kwargs: dict[str, Any]) -> int:
    """How many ids the model's inputs may use: its embedding rows, else what it was given."""
    embeddings = getattr(model, "get_input_embeddings", None)
    rows = getattr(embeddings(), "num_embeddings", None) if callable(embeddings) else None
    for candidate in (rows, kwargs.get("vocab_size"), getattr(model, "vocab_size", None)):
        if _is_int(candidate) and candidate > 0:
            return int(candidate)
    return 16


# -- metric, data loader, reward model ---------------------------------------------------------

#: Inputs a metric may score, in the order they are tried: (what, args).
METRIC_INPUTS: tuple[tuple[str, tuple[Any, ...]], ...] = (
    (
        "references (preds, targets)",
        (["the cat sat", "a dog", "red"], ["the cat sat", "a cat", "red"]),
    ),
    ("generations", (["the cat sat on the mat", "a dog ran", "the cat ran"],)),
    ("token-nll", ([0.5, 1.25, 2.0, 0.75],)),
    ("token-ids (predicted, target)", ([1, 2, 3, 4], [1, 2, 0, 4])),
)


def check_metric(report: ContractReport, factory: Any, kwargs: dict[str, Any]) -> None:
    metric = _build(report, factory, kwargs)
    if metric is None:
        return
    report.expect("the metric is callable", callable(metric), f"got {type(metric).__name__}")
    if not callable(metric):
        return
    failures = []
    for what, args in METRIC_INPUTS:
        try:
            first = metric(*args)
        except Exception as error:  # not this input: try the next one
            failures.append(f"{what}: {type(error).__name__}: {error}")
            continue
        report.expect(
            f"on {what}, the metric gives a finite float",
            _is_finite_float(first),
            f"got {first!r}",
        )
        ok, second = report.attempt(f"on {what}, a second call works", lambda a=args: metric(*a))
        if ok:
            report.expect(
                f"on {what}, the same inputs give the same score",
                second == first or (_nan(first) and _nan(second)),
                f"got {first!r} then {second!r}",
            )
        return
    report.expect("the metric scores one of the sample inputs", False, "; ".join(failures))


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def check_data_loader(report: ContractReport, factory: Any, kwargs: dict[str, Any]) -> None:
    records = _build(report, factory, kwargs)
    if records is None:
        return
    if not report.expect(
        "the loader returns an iterable of records",
        isinstance(records, Iterable) and not isinstance(records, (str, bytes)),
        f"got {type(records).__name__}",
    ):
        return
    ok, first = report.attempt(
        f"the first {RECORDS_CHECKED} records can be read",
        lambda: list(islice(iter(records), RECORDS_CHECKED)),
    )
    if ok:
        bad = [r for r in first if not isinstance(r, str)]
        report.expect(
            "every record is a str",
            bool(first) and not bad,
            f"got {type(bad[0]).__name__}: {bad[0]!r:.60}" if bad else "no records",
        )


def check_reward_model(report: ContractReport, factory: Any, kwargs: dict[str, Any]) -> None:
    model = _build(report, factory, kwargs)
    if model is None:
        return
    singles = []
    for prompt, completion in SAMPLE_PAIRS:
        ok, value = report.attempt(
            f"evaluate({prompt!r}, {completion!r}) works",
            lambda p=prompt, c=completion: model.evaluate(p, c),
        )
        if ok:
            report.expect(
                f"evaluate({prompt!r}, {completion!r}) is a finite float",
                _is_finite_float(value),
                f"got {value!r}",
            )
        singles.append(value)
    ok, batch = report.attempt(
        "batch_evaluate(pairs) works", lambda: list(model.batch_evaluate(list(SAMPLE_PAIRS)))
    )
    if ok:
        report.expect(
            "batch_evaluate agrees with evaluate, pair by pair",
            len(batch) == len(singles)
            and all(_close(a, b) for a, b in zip(batch, singles, strict=False)),
            f"got {batch!r} vs {singles!r}",
        )


def _close(a: Any, b: Any) -> bool:
    return (
        _is_finite_float(a)
        and _is_finite_float(b)
        and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    )


# -- training parts: optimizer, scheduler, callback -------------------------------------------


def check_optimizer(report: ContractReport, factory: Any, kwargs: dict[str, Any]) -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    groups = [
        {"params": [p for p in model.parameters() if p.ndim >= 2], "weight_decay": 0.01},
        {"params": [p for p in model.parameters() if p.ndim < 2], "weight_decay": 0.0},
    ]
    ok, optimizer = report.attempt(
        "the factory builds an optimizer on parameter groups",
        lambda: factory(groups, **{"lr": 1e-2, **kwargs}),
    )
    if not ok:
        return
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(torch.randn(16, 4)).pow(2).mean()
    loss.backward()
    ok, _ = report.attempt("optimizer.step() works", optimizer.step)
    if ok:
        changed = sum(
            not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)
        )
        report.expect("a step changes the parameters", changed > 0, "no parameter changed")
        finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
        report.expect("parameters stay finite after a step", finite, "a parameter is not finite")


def check_scheduler(report: ContractReport, factory: Any, kwargs: dict[str, Any]) -> None:
    max_steps, lr = 100, 1e-3
    settings = {"lr": lr, "max_steps": max_steps, "warmup_steps": 10, **kwargs}
    ok, schedule = report.attempt("the factory builds a schedule", lambda: factory(**settings))
    if not ok:
        return
    if not report.expect("the schedule is a function of the step", callable(schedule)):
        return
    ok, rates = report.attempt(
        f"schedule(step) works for steps 1..{max_steps}",
        lambda: [schedule(step) for step in range(1, max_steps + 1)],
    )
    if ok:
        bad = [(s, r) for s, r in enumerate(rates, 1) if not (_is_finite_float(r) and r >= 0)]
        report.expect(
            "every rate is a finite number >= 0",
            not bad,
            f"step {bad[0][0]} gives {bad[0][1]!r}" if bad else "",
        )


def check_callback(report: ContractReport, factory: Any, kwargs: dict[str, Any]) -> None:
    import tempfile
    from pathlib import Path

    from codex_ml.plugins.lifecycle import EVENTS, RunInfo
    from codex_ml.training.errors import StopTraining

    callback = _build(report, factory, kwargs)
    if callback is None:
        return
    methods = [e for e in EVENTS if callable(getattr(callback, e.method, None))]
    report.expect(
        "the callback has at least one on_<event> method",
        bool(methods),
        f"none of {', '.join(e.method for e in EVENTS)}",
    )
    with tempfile.TemporaryDirectory(prefix="codex-ml-check-") as folder:
        run = RunInfo(Path(folder), {"training": {"max_steps": 2}}, rank=0, world_size=1)
        checkpoint = Path(folder) / "checkpoints" / "step-2"
        arguments = {
            "train_start": (run,),
            "log": (run, {"event": "log", "step": 1, "loss": 2.5, "lr": 1e-3}),
            "evaluate": (run, {"step": 2, "eval_loss": 2.25, "eval_ppl": 9.49}),
            "checkpoint": (run, checkpoint),
            "train_end": (run, {"status": "completed", "steps": 2, "final_metrics": {}}),
        }
        for event in methods:
            method = getattr(callback, event.method)
            try:
                method(*arguments[event.name])
            except StopTraining:
                report.expect(f"{event.method} survives a run's {event.name}", True)
            except Exception as error:
                report.expect(
                    f"{event.method} survives a run's {event.name}",
                    False,
                    f"raised {type(error).__name__}: {error}",
                )
            else:
                report.expect(f"{event.method} survives a run's {event.name}", True)


# -- adapter ----------------------------------------------------------------------------------


def check_adapter(report: ContractReport, factory: Any, kwargs: dict[str, Any]) -> None:
    """On a small decoder_only: some parameters train, the state round-trips, merge holds."""
    import torch
    from torch import nn

    from codex_ml.training.checkpoint.trainable import ADAPTER_METHODS

    adapter = _build(report, factory, kwargs)
    if adapter is None:
        return
    missing = [m for m in ADAPTER_METHODS if not callable(getattr(adapter, m, None))]
    if not report.expect(
        f"the adapter has {', '.join(ADAPTER_METHODS)}", not missing, f"lacks {missing}"
    ):
        return
    ok, model = report.attempt(
        "apply() prepares a small decoder_only", lambda: adapter.apply(_base())
    )
    if not ok or not report.expect(
        "apply() returns the torch.nn.Module to train",
        isinstance(model, nn.Module),
        f"got {type(model).__name__}",
    ):
        return
    tensors = list(model.parameters())
    training = [p for p in tensors if p.requires_grad]
    if not report.expect(
        "some but not all parameters train",
        0 < len(training) < len(tensors),
        f"{len(training)} of {len(tensors)} parameter tensors train",
    ):
        return
    ids = torch.randint(0, _ADAPTER_VOCAB, (2, 8), generator=torch.Generator().manual_seed(0))
    if not _check_gradients(report, model, ids, training):
        return
    _train_a_little(training)  # a fresh adapter may change nothing (LoRA's B starts at zero)
    ok, state = report.attempt(
        "trainable_state() works", lambda: dict(adapter.trainable_state(model))
    )
    if not ok:
        return
    frozen = {p.data_ptr() for p in tensors if not p.requires_grad}
    held = [name for name, t in state.items() if getattr(t, "data_ptr", lambda: 0)() in frozen]
    report.expect("trainable_state() holds no frozen base weight", not held, f"it holds {held[:3]}")
    saved = {name: tensor.detach().clone() for name, tensor in state.items()}
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    _check_round_trip(report, factory, kwargs, saved, ids, expected)
    _check_merge(report, adapter, model, ids, expected)


_ADAPTER_VOCAB = 32


def _base() -> Any:
    """The small decoder an adapter is checked on, the same weights on every call."""
    from codex_ml.models.decoder_only import build_decoder_only

    return build_decoder_only(
        vocab_size=_ADAPTER_VOCAB, n_layer=2, n_head=2, n_embd=16, block_size=16, seed=0
    )


def _check_gradients(report: ContractReport, model: Any, ids: Any, training: list[Any]) -> bool:
    import torch.nn.functional as F

    def backward() -> None:
        logits = model(input_ids=ids).logits
        F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten()).backward()

    ok, _ = report.attempt("a training step's loss backpropagates", backward)
    if not ok:
        return False
    reached = [p for p in training if p.grad is not None]
    return report.expect(
        "gradients reach the parameters that train",
        bool(reached),
        f"none of {len(training)} trainable tensors got a gradient",
    )


def _train_a_little(training: list[Any]) -> None:
    import torch

    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in training:
            noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
            parameter.add_(0.05 * noise.to(parameter.device))
            parameter.grad = None


def _check_round_trip(
    report: ContractReport,
    factory: Any,
    kwargs: dict[str, Any],
    saved: dict[str, Any],
    ids: Any,
    expected: Any,
) -> None:
    import torch

    def restored() -> Any:
        adapter = factory(**kwargs)
        fresh = adapter.apply(_base())
        adapter.load_trainable_state(fresh, saved)
        return fresh.eval()

    ok, fresh = report.attempt(
        "load_trainable_state() loads the state into a fresh base and adapter", restored
    )
    if ok:
        with torch.no_grad():
            got = fresh(input_ids=ids).logits
        report.expect(
            "a save/load round trip gives the same outputs",
            torch.allclose(got, expected, atol=1e-5),
            f"outputs differ by {float((got - expected).abs().max()):.3g}",
        )


def _check_merge(report: ContractReport, adapter: Any, model: Any, ids: Any, expected: Any) -> None:
    import torch

    ok, plain = report.attempt("merge() works", lambda: adapter.merge(model))
    if not ok:
        return
    plain.eval()
    with torch.no_grad():
        got = plain(input_ids=ids).logits
    report.expect(
        "merge gives the same outputs as the unmerged model",
        torch.allclose(got, expected, atol=1e-4),
        f"outputs differ by {float((got - expected).abs().max()):.3g}",
    )
    names = set(_base().state_dict())
    report.expect(
        "merge gives a plain model: the base's own tensors, nothing added",
        set(plain.state_dict()) == names,
        f"extra {sorted(set(plain.state_dict()) - names)[:3]}",
    )


#: kind -> its check.
CHECKS: dict[str, Callable[[ContractReport, Any, dict[str, Any]], None]] = {
    "tokenizer": check_tokenizer,
    "model": check_model,
    "metric": check_metric,
    "data_loader": check_data_loader,
    "reward_model": check_reward_model,
    "optimizer": check_optimizer,
    "scheduler": check_scheduler,
    "callback": check_callback,
    "adapter": check_adapter,
}
#: The kinds that have a contract check.
CHECKED_KINDS: tuple[str, ...] = tuple(CHECKS)
#: Parameters the check itself gives a factory of that kind (never "needs arguments").
EXTRA_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "optimizer": ("params", "lr"),
    "scheduler": ("lr", "max_steps", "warmup_steps"),
}
