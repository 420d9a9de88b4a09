"""The ``offline:functional`` trainer: a plain PyTorch causal-LM training loop.

Read top to bottom: the trainer's settings (:class:`FunctionalTrainer`), one
optimiser step (:func:`train_step`), then the loop (:class:`_Run`) that logs,
evaluates, checkpoints and stops; what a run returns is a
:class:`~codex_ml.training.result.TrainResult`.

The loop is written for speed as much as for reading: data small enough is moved
to the device once and batches are drawn there (a large token store stays
memory-mapped and each batch is copied over; ``training/data.py``), and the loss is only read
back to the host (a GPU sync) at log steps, which is also where NaN losses are
caught. The loss is computed here, from the model's ``.logits``, so any model
whose forward takes ``input_ids`` and returns ``.logits`` trains the same way
(whether or not it would shift ``labels`` itself).
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from codex_ml.models.placement import resolve_device
from codex_ml.training.activation_checkpointing import recomputed_activations
from codex_ml.training.checkpoint import (
    capture_rng_state,
    find_best_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from codex_ml.training.data import IGNORE_INDEX, BatchSampler, Blocks, TokenBlocks
from codex_ml.training.distributed import World, distributed_world, gradient_sync
from codex_ml.training.errors import StopTraining, TrainingDivergedError
from codex_ml.training.evaluation import EVAL_METRICS, evaluate
from codex_ml.training.examples import ExampleBlocks, packed_examples, training_blocks
from codex_ml.training.interrupt import GracefulInterrupt, stop_notice
from codex_ml.training.keep_best import BestEvaluation, check_keep_best
from codex_ml.training.optim import adamw, optimizer_for, set_lr
from codex_ml.training.parallel import STRATEGIES, RunModel
from codex_ml.training.precision import autocast_for, check_precision, grad_scaler_for
from codex_ml.training.result import TrainResult
from codex_ml.training.runtime import torch_threads
from codex_ml.training.schedules import Schedule, cosine

Callback = Callable[[dict[str, Any]], None]

#: The stop code of a callback's StopTraining, agreed between ranks like a signal's; a signal's
#: code is its number above _SIGNALLED, so it outranks a request (SIGHUP's number is 1 too).
_STOP_REQUESTED = 1
_SIGNALLED = 64


@dataclass(frozen=True, kw_only=True)
class FunctionalTrainer:
    """Plain-PyTorch causal-LM trainer: packed blocks, any optimizer and schedule, checkpoints.

    ``optimizer`` and ``scheduler`` are factories from the ``optimizer`` and
    ``scheduler`` registries (``codex-ml train`` passes the chosen presets):
    ``optimizer(parameter_groups, lr=lr)`` and
    ``scheduler(lr=lr, max_steps=max_steps, warmup_steps=warmup_steps)``; None
    is AdamW with betas (0.9, 0.95) and warmup plus cosine decay to 0.1 * lr.
    """

    #: Takes a token store's splits (objects with ``token_ids()``) as well as text records.
    reads_token_ids: ClassVar[bool] = True

    max_steps: int = 200  # optimiser steps in the whole run
    batch_size: int = 8  # blocks per micro-batch (per process)
    block_size: int = 128  # tokens per training sequence
    lr: float = 3e-3  # peak learning rate (the schedule's)
    warmup_steps: int = 20  # linear warmup from 0 to lr
    weight_decay: float = 0.1  # decay of weight matrices (not biases, norms, embeddings)
    optimizer: Callable[..., torch.optim.Optimizer] | None = None  # None: AdamW
    scheduler: Callable[..., Schedule] | None = None  # None: warmup + cosine to 0.1 * lr
    grad_clip: float = 1.0  # max gradient norm; 0 disables clipping
    grad_accum_steps: int = 1  # micro-batches per optimiser step
    log_every: int = 10  # steps between log records (and loss checks)
    eval_every: int = 0  # steps between evaluations; 0: only at the end
    eval_max_batches: int = 20  # eval batches per evaluation
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:N"
    precision: str = "auto"  # "auto" (bf16 on CUDA, fp32 on CPU), "fp32", "bf16", "fp16" (CUDA)
    compile: bool = False  # torch.compile the training step (checkpoints stay uncompiled)
    activation_checkpointing: bool = False  # recompute block activations in backward: less memory
    packing: bool | None = None  # instruction data: examples packed per block (None: true)
    strategy: str = "ddp"  # under torchrun: "ddp" (replicas) or "fsdp" (sharded, FSDP2)
    num_threads: int | None = None  # torch CPU threads during the run; None: unchanged
    output_dir: str | None = None  # where checkpoints go; None: nothing is written
    checkpoint_every: int = 0  # steps between checkpoints; 0: only at the end
    keep_checkpoints: int = 2  # checkpoints kept on disk (the newest; the best apart)
    keep_best: str | None = None  # eval_loss...: keep its best evaluation's checkpoint too
    keep_best_mode: str = "min"  # "min": the lowest keep_best is best; "max": the highest
    resume_from: str | None = None  # a run dir, checkpoints/ dir or step-N dir

    def __post_init__(self) -> None:
        _validate(self)

    def __call__(
        self,
        model: nn.Module,
        tokenizer: Any,
        train_data: Iterable[str] | Any,  # text records, or an object with token_ids()
        eval_data: Iterable[str] | Any | None = None,
        *,
        callbacks: Sequence[Callback] = (),
    ) -> TrainResult:
        """Train ``model`` on ``train_data`` and return the history and final metrics."""
        started = time.perf_counter()
        device = resolve_device(self.device)
        with (
            recomputed_activations(model, self.activation_checkpointing),
            torch_threads(self.num_threads),
            distributed_world(device) as world,
            GracefulInterrupt(
                notice=self._interrupt_notice if world.is_main else None
            ) as interrupt,
        ):
            device = world.device(device)
            self._check_evaluated(eval_data)
            torch.manual_seed(self.seed)  # dropout; every rank alike, as the model was
            train_blocks = self._blocks(tokenizer, train_data, "train_data")
            eval_blocks = (
                None
                if eval_data is None
                # Evaluation reads only its first batches: only those are materialised.
                else self._blocks(tokenizer, eval_data, "eval_data")
                .place(device)
                .head(self.batch_size * self.eval_max_batches)
            )
            with packed_examples(model, train_blocks):
                run = _Run(
                    self, model, train_blocks.place(device), world, device, callbacks, started
                )
                return run.train(eval_blocks, interrupt)

    def _blocks(self, tokenizer: Any, data: Any, name: str) -> TokenBlocks | ExampleBlocks:
        return training_blocks(tokenizer, data, self.block_size, name=name, packing=self.packing)

    def _check_evaluated(self, eval_data: Any) -> None:
        if self.keep_best is not None and eval_data is None:
            raise ValueError(
                f"keep_best={self.keep_best!r}: this run holds no data out to evaluate on "
                "(run.eval_fraction=0 and no data.eval_path), so no checkpoint can be the best. "
                "Hold some data out, or leave keep_best unset."
            )

    def _interrupt_notice(self, signum: signal.Signals) -> str:
        then = "save a checkpoint and stop" if self.output_dir is not None else "stop"
        return stop_notice(signum, then)

    def config(self) -> dict[str, Any]:
        """The settings as a plain dict (recorded in each checkpoint's meta.json).

        The optimizer and scheduler are recorded as ``module:function`` and
        their keyword arguments, since JSON cannot hold a function.
        """
        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("optimizer", "scheduler"):
            settings[name] = _described(settings[name])
        return settings


def _validate(trainer: FunctionalTrainer) -> None:
    """Reject bad settings at construction, naming the parameter and the accepted range."""

    def check_int(name: str, minimum: int, *, optional: bool = False) -> None:
        value = getattr(trainer, name)
        if optional and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name}={value!r} must be an integer >= {minimum}.")

    def check_float(name: str, low: float, high: float, *, interval: str) -> None:
        value = getattr(trainer, name)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and (low < value if interval[0] == "(" else low <= value)
        ok = ok and (value < high if interval[-1] == ")" else value <= high)
        if not ok:
            raise ValueError(f"{name}={value!r} must be a number in {interval}.")

    for name in ("max_steps", "batch_size", "block_size", "grad_accum_steps", "log_every"):
        check_int(name, 1)
    for name in ("warmup_steps", "eval_every", "checkpoint_every"):
        check_int(name, 0)
    check_int("eval_max_batches", 1)
    check_int("keep_checkpoints", 1)
    check_int("num_threads", 1, optional=True)
    check_int("seed", 0)
    check_float("lr", 0.0, math.inf, interval="(0, inf)")
    check_float("weight_decay", 0.0, math.inf, interval="[0, inf)")
    check_float("grad_clip", 0.0, math.inf, interval="[0, inf)")
    for name in ("optimizer", "scheduler"):
        if getattr(trainer, name) is not None and not callable(getattr(trainer, name)):
            raise ValueError(f"{name}={getattr(trainer, name)!r} must be a factory (or None).")
    for name in ("compile", "activation_checkpointing"):
        if not isinstance(getattr(trainer, name), bool):
            raise ValueError(f"{name}={getattr(trainer, name)!r} must be true or false.")
    if trainer.packing is not None and not isinstance(trainer.packing, bool):
        raise ValueError(f"packing={trainer.packing!r} must be true, false or null.")
    if trainer.strategy not in STRATEGIES:
        raise ValueError(f"strategy={trainer.strategy!r} must be one of {', '.join(STRATEGIES)}.")
    device = resolve_device(trainer.device)  # raises a ValueError naming device=...
    check_precision(trainer.precision, device, strategy=trainer.strategy)
    check_keep_best(trainer.keep_best, trainer.keep_best_mode, EVAL_METRICS)
    if trainer.keep_best is not None and trainer.output_dir is None:
        raise ValueError(
            f"keep_best={trainer.keep_best!r} needs output_dir: the best checkpoint is kept "
            "under output_dir/checkpoints/."
        )
    if trainer.checkpoint_every and trainer.output_dir is None:
        raise ValueError(
            f"checkpoint_every={trainer.checkpoint_every} needs output_dir: checkpoints are "
            "written under output_dir/checkpoints/."
        )


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    sampler: BatchSampler,
    *,
    accum_steps: int,
    grad_clip: float,
    autocast: AbstractContextManager[Any],
    scaler: torch.amp.GradScaler | None = None,
) -> torch.Tensor:
    """One optimiser step over ``accum_steps`` micro-batches; returns its mean loss, on device.

    With an fp16 ``scaler`` the loss is scaled before ``backward``, the gradients are
    unscaled before clipping, and the step is skipped when they overflowed.
    """
    step_loss = None
    for micro in range(accum_steps):
        batch = sampler.next_batch()
        with gradient_sync(model, sync=micro == accum_steps - 1):
            with autocast:
                logits = model(**batch.model_inputs()).logits
                loss = token_loss(logits, batch.targets, masked=sampler.masked)
            if accum_steps > 1:  # the step's gradient is the mean over its micro-batches
                loss = loss / accum_steps
            (loss if scaler is None else scaler.scale(loss)).backward()
        step_loss = loss.detach() if step_loss is None else step_loss + loss.detach()
    if scaler is not None and grad_clip:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return step_loss


def token_loss(logits: torch.Tensor, targets: torch.Tensor, *, masked: bool) -> torch.Tensor:
    """Mean next-token cross-entropy over the targets that carry the loss.

    ``masked`` targets (instruction data) skip ``IGNORE_INDEX``; a batch in which
    no target carries the loss has loss 0 (no gradient), not NaN.
    """
    if not masked:
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    total = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
    return total / (targets != IGNORE_INDEX).sum().clamp(min=1)


class _Run:
    """The objects and counters of one call to the trainer."""

    def __init__(
        self,
        trainer: FunctionalTrainer,
        model: nn.Module,
        train_blocks: TokenBlocks | ExampleBlocks,
        world: World,
        device: torch.device,
        callbacks: Sequence[Callback],
        started: float,
    ) -> None:
        self.trainer = trainer
        self.world = world
        self.device = device
        self.callbacks = callbacks  # on every rank: lifecycle hooks run on every rank
        self.started = started
        # Saved as is; stepped compiled, DDP-wrapped or as a sharded copy (training/parallel.py).
        self.placed = RunModel(
            model, world, device, strategy=trainer.strategy, compile=trainer.compile
        )
        self.model = self.placed.model
        self.autocast = autocast_for(device, trainer.precision)
        self.scaler = grad_scaler_for(device, trainer.precision)  # fp16 only
        self.optimizer = optimizer_for(
            self.placed.trained,
            trainer.optimizer or adamw,
            lr=trainer.lr,
            weight_decay=trainer.weight_decay,
        )
        self.schedule = (trainer.scheduler or cosine)(
            lr=trainer.lr, max_steps=trainer.max_steps, warmup_steps=trainer.warmup_steps
        )
        self.stop_request: StopTraining | None = None  # the first StopTraining of a callback
        self.sampler = BatchSampler(
            train_blocks,
            batch_size=trainer.batch_size,
            seed=trainer.seed,
            rank=world.rank,
            world_size=world.size,
        )
        self.step = 0
        self.tokens_seen = 0
        self.loss_tokens_before = 0  # tokens that carried the loss before a resume (all ranks)
        self.last_loss_tokens = 0  # ... and so far, as last counted
        self.tokens_per_step = (
            trainer.batch_size * trainer.block_size * trainer.grad_accum_steps * world.size
        )
        self.history: list[dict[str, Any]] = []
        self.metrics: dict[str, float] = {}
        self.checkpoint: Path | None = None
        self.first_loss: float | None = None
        self.evaluated_at: int | None = None  # the step of the latest evaluation
        self.saved_at: int | None = None  # the step of the latest checkpoint
        self.best = (
            BestEvaluation(trainer.keep_best, trainer.keep_best_mode) if trainer.keep_best else None
        )
        self.best_unsaved = False  # the latest evaluation is the best: checkpoint this step

    # --- the loop ------------------------------------------------------------

    def train(self, eval_blocks: Blocks | None, interrupt: GracefulInterrupt) -> TrainResult:
        t = self.trainer
        if t.resume_from is not None:
            self._resume(t.resume_from)
        step_model = self.placed.step_module()
        if eval_blocks is not None and t.eval_every and self.step == 0:
            self._evaluate(eval_blocks)  # the starting point of the eval curve

        first_step = self.step + 1
        window = _Window(self.step, self.tokens_seen, self.device, self.loss_tokens())
        interrupted = stopped = False
        stop_code = 0  # the signal (or stop request) that ended the run, agreed by all ranks
        while self.step < t.max_steps:
            self.step += 1
            lr = self.schedule(self.step)
            set_lr(self.optimizer, lr)
            window.loss_sum += train_step(
                step_model,
                self.optimizer,
                self.sampler,
                accum_steps=t.grad_accum_steps,
                grad_clip=t.grad_clip,
                autocast=self.autocast,
                scaler=self.scaler,
            )
            self.tokens_seen += self.tokens_per_step

            checkpoint_now = bool(t.checkpoint_every) and self.step % t.checkpoint_every == 0
            # A stop request (Ctrl-C, SIGTERM, or a callback's StopTraining) is agreed by all
            # ranks after every step, so they all stop at this same step and save it together.
            # One made while a step is reported is honoured after the next step, as a signal
            # is; a signal outranks a callback's request.
            requested = _STOP_REQUESTED if self.stop_request is not None else 0
            signalled = _SIGNALLED + interrupt.signum if interrupt.requested else 0
            stop_code = self.world.agree_max(signalled or requested)
            ending = stop_code != 0 and self.step < t.max_steps  # else: it is done
            interrupted = ending and stop_code != _STOP_REQUESTED
            stopped = ending and stop_code == _STOP_REQUESTED
            # Only log steps read the loss back from the device; a checkpoint step is
            # one too, so that a NaN is caught before it could be saved.
            log_now = (
                self.step == first_step
                or self.step % t.log_every == 0
                or self.step == t.max_steps
                or checkpoint_now
                or ending
            )
            if log_now:
                self._log(window, lr)
            paused = time.perf_counter()
            # The last step is evaluated here, before its checkpoint, so keep_best can name it.
            final = self.step == t.max_steps or stopped
            if eval_blocks is not None and (final or self._eval_due()):
                self._evaluate(eval_blocks)
            if checkpoint_now or ending or self.best_unsaved:
                self._save()
            if ending:
                break
            # Evaluating and saving are not training: keep them out of tokens_per_s.
            if log_now:
                window = _Window(self.step, self.tokens_seen, self.device, self.last_loss_tokens)
            else:
                window.started += time.perf_counter() - paused

        if not interrupted:
            if eval_blocks is not None and self.evaluated_at != self.step:
                self._evaluate(eval_blocks)
            if t.output_dir is not None and (self.saved_at != self.step or self.best_unsaved):
                self._save()
        self.placed.gather(self.step)  # the caller's model holds the trained weights
        loss_tokens = self.loss_tokens()
        return TrainResult(
            history=self.history,
            final_metrics=self.metrics,
            steps=self.step,
            tokens_seen=self.tokens_seen,
            wall_time=time.perf_counter() - self.started,
            checkpoint=self.checkpoint,
            interrupted=interrupted,
            first_loss=self.first_loss,
            stop_signal=signal.Signals(stop_code - _SIGNALLED).name if interrupted else None,
            stopped=stopped,
            stop_reason=self._stop_reason() if stopped else None,
            best=self.best.summary() if self.best is not None else None,
            loss_tokens=loss_tokens,
        )

    # --- what happens at log, eval and checkpoint steps ------------------------

    def _log(self, window: _Window, lr: float) -> None:
        """Read the window's mean loss (all ranks), reject NaN, report."""
        loss_sum = self.world.all_sum(window.loss_sum.clone()).item()
        steps = self.step - window.start_step
        loss = loss_sum / (steps * self.world.size)
        if not math.isfinite(loss):
            raise TrainingDivergedError(
                step=self.step,
                loss=loss,
                last_checkpoint=self.checkpoint,
                since_step=window.start_step,
            )
        loss_tokens = self.loss_tokens()
        now = time.perf_counter()
        if self.first_loss is None:
            self.first_loss = loss
        self.metrics["train_loss"] = loss
        record = {
            "event": "log",
            "step": self.step,
            "loss": loss,
            "lr": lr,
            "tokens_per_s": (self.tokens_seen - window.start_tokens) / (now - window.started),
            "elapsed": now - self.started,
            "tokens_seen": self.tokens_seen,
            "max_steps": self.trainer.max_steps,
        }
        if self.sampler.masked:  # instruction data: not every token carries the loss
            seconds = now - window.started
            record["loss_tokens_seen"] = loss_tokens
            record["loss_tokens_per_s"] = (loss_tokens - window.start_loss_tokens) / seconds
        self._report(record, keep=True)

    def loss_tokens(self) -> int:
        """Targets that carried the loss so far, over all ranks (every rank calls this together).

        Every target does for text; for instruction data, the sampler counts them.
        """
        if not self.sampler.masked:
            self.last_loss_tokens = self.tokens_seen
        else:
            counted = self.world.all_sum(self.sampler.loss_tokens.to(self.device).clone())
            self.last_loss_tokens = self.loss_tokens_before + int(counted.item())
        return self.last_loss_tokens

    def _eval_due(self) -> bool:
        every = self.trainer.eval_every
        return bool(every) and self.step % every == 0

    def _evaluate(self, eval_blocks: Blocks) -> None:
        results = evaluate(
            self.placed.evaluated,
            eval_blocks,
            batch_size=self.trainer.batch_size,
            max_batches=self.trainer.eval_max_batches,
            autocast=self.autocast,
        )
        self.metrics.update(results)
        self.evaluated_at = self.step
        if self.best is not None and self.step > 0:  # step 0 is only the curve's start
            improved = self.best.offer(self.step, results)
            # Every rank saves together (FSDP gathers): agree, as for a stop request.
            self.best_unsaved = bool(self.world.agree_max(int(improved)))
        record = {"event": "eval", "step": self.step, **results}
        record["elapsed"] = time.perf_counter() - self.started
        self._report(record, keep=True)

    def _save(self) -> None:
        self.saved_at = self.step
        best, self.best_unsaved = self.best_unsaved, False
        if self.trainer.output_dir is None:
            return
        # Under FSDP every process takes part in gathering the weights and optimizer state.
        self.placed.gather(self.step)
        optimizer_state = self.placed.optimizer_state(self.optimizer)
        loss_tokens = self.loss_tokens()  # every rank: a sum over them
        if not self.world.is_main:
            return
        state = {
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "loss_tokens_seen": loss_tokens,
            "optimizer": optimizer_state,
            # The schedule is a function of the step: the step above is all of its state.
            "sampler": self.sampler.state_dict(),
            "rng": capture_rng_state(self.device),
        }
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        if self.best is not None:
            state["best"] = self.best.state_dict()
        self.checkpoint = save_checkpoint(
            self.trainer.output_dir,
            step=self.step,
            model=self.model,
            state=state,
            config=self.trainer.config(),
            keep=self.trainer.keep_checkpoints,
            best=best,
        )
        record = {"event": "checkpoint", "step": self.step, "path": str(self.checkpoint)}
        if best and self.best is not None:
            self.best.checkpoint = self.checkpoint
            record["best"] = True
        self._report(record)

    def _resume(self, path: str) -> None:
        loaded = self.placed.load(path, self.optimizer)
        state = loaded.state
        if self.scaler is not None and "scaler" in state:  # else: an fp16 scaler starts afresh
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.tokens_seen = int(state["tokens_seen"])
        self.loss_tokens_before = int(state.get("loss_tokens_seen", 0))
        if not self.sampler.load_state_dict(state["sampler"]):
            warnings.warn(
                f"{loaded.path} was saved on another kind of device ({self.device.type} now); "
                "its batch order cannot be continued, so batches are drawn afresh from "
                "seed + step. Training continues, but not bit for bit as it would have.",
                stacklevel=4,
            )
            self.sampler.generator.manual_seed(self.trainer.seed + self.step)
        restore_rng_state(state["rng"], self.device)
        if self.best is not None and "best" in state:
            self.best.load_state_dict(state["best"], find_best_checkpoint(loaded.path.parent))
        self.checkpoint = loaded.path
        self.saved_at = self.step  # no need to write it again

    def _report(self, record: dict[str, Any], *, keep: bool = False) -> None:
        if keep:
            self.history.append(record)
        for callback in self.callbacks:
            try:
                callback(dict(record))
            except StopTraining as request:  # honoured after this step (see train())
                if self.stop_request is None:
                    self.stop_request = request

    def _stop_reason(self) -> str:
        if self.stop_request is not None:
            return self.stop_request.reason
        return "a callback on another rank asked the run to stop"


@dataclass
class _Window:
    """The steps since the last log record: their summed loss stays on the device."""

    start_step: int
    start_tokens: int
    device: torch.device
    start_loss_tokens: int = 0
    loss_sum: torch.Tensor = field(init=False)
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.loss_sum = torch.zeros((), device=self.device)
        self.started = time.perf_counter()


def _described(factory: Any) -> Any:
    """A factory as JSON can hold it: ``module:function`` and its bound keyword arguments."""
    if factory is None:
        return None
    inner = getattr(factory, "func", factory)  # functools.partial
    name = f"{getattr(inner, '__module__', '?')}:{getattr(inner, '__qualname__', repr(inner))}"
    keywords = getattr(factory, "keywords", None)
    return {"factory": name, "kwargs": dict(keywords)} if keywords else {"factory": name}
