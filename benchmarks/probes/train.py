"""Train the same model on the same data with one of three loops; prints JSON (rank 0).

Usage: ``python train.py VARIANT [options]`` (or under ``torchrun``), where
VARIANT is

- ``functional``: codex-ml's ``offline:functional`` trainer, from the registry;
- ``hand``: a minimal hand-written PyTorch loop (what nanoGPT's train.py does);
- ``hf``: ``transformers.Trainer`` with the model wrapped to return its loss,
  logging, saving and evaluation turned off.

With ``--compile`` the model is ``torch.compile``d: the functional trainer by
its ``compile=True``, the hand loop by calling ``torch.compile(model)`` as
nanoGPT does (``hf`` is not offered compiled). The first step, which compiles,
is outside the steady-state figures.

All three: ``decoder_only`` built with one seed, the byte tokenizer, the
tiny corpus packed into blocks of ``block_size + 1`` tokens, random batches,
AdamW (betas 0.9/0.95, weight decay 0.1 on matrices), linear warmup then
cosine decay, gradient clipping at 1.0, ``torch.set_num_threads`` pinned.

Reported: ``tokens_per_s`` over steps 2..N (steady state: the first step's
one-time allocations excluded), ``tokens_per_cpu_s`` over the same steps per
CPU second of this process (steadier on a shared machine; under torchrun it
counts rank 0 only), ``end_to_end_tokens_per_s`` over the whole
call (data packing and set-up included), and ``peak_rss_mb``, the process's
peak resident memory (``ru_maxrss``), next to ``rss_before_mb``, the peak
before training began (interpreter, imports, model and data).
"""

import argparse
import json
import math
import os
import resource
import time
from functools import partial

import torch
import torch._dynamo  # an optimizer imports it when first built: ~1.5 s kept out of timing
import torch.nn.functional as F

from codex_ml.registry import (
    get_data_loader,
    get_model,
    get_registry,
    get_tokenizer,
    get_trainer,
)

BETAS = (0.9, 0.95)
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0


def cpu():
    """CPU seconds of this process: what a step cost, whatever else the machine was doing."""
    return time.process_time()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def lr_at(step, args):
    """Linear warmup to lr, then cosine decay to lr / 10 (as the functional trainer does)."""
    if step <= args.warmup_steps:
        return args.lr * step / args.warmup_steps
    progress = (step - args.warmup_steps) / max(1, args.steps - args.warmup_steps)
    return args.lr * (0.1 + 0.45 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def packed_blocks(tokenizer, records, block_size):
    """Inputs and targets, ``(n_blocks, block_size)`` each, cut from the joined token stream."""
    ids = []
    for record in records:
        if record:
            ids += tokenizer.encode(record)
            ids.append(tokenizer.eos_id)
    n_blocks = (len(ids) - 1) // block_size
    blocks = torch.tensor(ids[: n_blocks * block_size + 1]).unfold(0, block_size + 1, block_size)
    return blocks[:, :-1].contiguous(), blocks[:, 1:].contiguous()


def run_functional(model, tokenizer, records, args):
    trainer = get_trainer(
        "offline:functional",
        max_steps=args.steps,
        batch_size=args.batch_size,
        block_size=args.block_size,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        weight_decay=WEIGHT_DECAY,
        optimizer=partial(get_registry("optimizer").get("adamw"), betas=BETAS),
        grad_clip=GRAD_CLIP,
        log_every=args.steps,  # logs (and reads the loss back) at step 1 and the last step only
        num_threads=args.threads,
        device="cpu",
        seed=args.seed,
        compile=args.compile,
    )
    cpu_at_logs = []  # the callback runs right after each log record is made
    started = time.perf_counter()
    result = trainer(model, tokenizer, records, callbacks=[lambda _: cpu_at_logs.append(cpu())])
    total = time.perf_counter() - started
    first, last = result.history[0], result.history[-1]
    return {
        "tokens": result.tokens_seen,
        "steady_tokens": last["tokens_seen"] - first["tokens_seen"],
        "steady_s": last["elapsed"] - first["elapsed"],
        # Callbacks run on rank 0 only; only rank 0 reports.
        "steady_cpu_s": cpu_at_logs[-1] - cpu_at_logs[0] if cpu_at_logs else None,
        "total_s": total,
        "first_loss": result.first_loss,
        "final_loss": result.final_metrics["train_loss"],
    }


def run_hand(model, tokenizer, records, args):
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    inputs, targets = packed_blocks(tokenizer, records, args.block_size)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=args.lr,
        betas=BETAS,
    )
    generator = torch.Generator().manual_seed(args.seed)
    model.train()
    step_model = torch.compile(model) if args.compile else model
    for step in range(1, args.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args)
        index = torch.randint(len(inputs), (args.batch_size,), generator=generator)
        logits = step_model(input_ids=inputs[index]).logits
        loss = F.cross_entropy(logits.flatten(0, 1), targets[index].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step == 1:
            first_loss = loss.item()
            after_first, cpu_after_first = time.perf_counter(), cpu()
    final_loss = loss.item()
    ended, cpu_ended = time.perf_counter(), cpu()
    tokens = args.steps * args.batch_size * args.block_size
    return {
        "tokens": tokens,
        "steady_tokens": tokens - args.batch_size * args.block_size,
        "steady_s": ended - after_first,
        "steady_cpu_s": cpu_ended - cpu_after_first,
        "total_s": ended - started,
        "first_loss": first_loss,
        "final_loss": final_loss,
    }


def run_hf(model, tokenizer, records, args):
    import tempfile

    from transformers import Trainer, TrainerCallback, TrainingArguments

    started = time.perf_counter()
    torch.set_num_threads(args.threads)

    class WithLoss(torch.nn.Module):
        """What transformers.Trainer expects: forward(input_ids, labels) -> {"loss": ...}."""

        def __init__(self, lm):
            super().__init__()
            self.lm = lm

        def forward(self, input_ids, labels):
            logits = self.lm(input_ids=input_ids).logits
            return {"loss": F.cross_entropy(logits.flatten(0, 1), labels.flatten())}

    class Blocks(torch.utils.data.Dataset):
        def __init__(self, inputs, targets):
            self.inputs, self.targets = inputs, targets

        def __len__(self):
            return len(self.inputs)

        def __getitem__(self, i):
            return {"input_ids": self.inputs[i], "labels": self.targets[i]}

    class StepClock(TrainerCallback):
        def on_step_end(self, training_args, state, control, **kwargs):
            if state.global_step == 1:
                self.after_first, self.cpu_after_first = time.perf_counter(), cpu()

    inputs, targets = packed_blocks(tokenizer, records, args.block_size)
    clock = StepClock()
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = TrainingArguments(
            output_dir=output_dir,
            max_steps=args.steps,
            per_device_train_batch_size=args.batch_size,
            learning_rate=args.lr,
            weight_decay=WEIGHT_DECAY,
            adam_beta1=BETAS[0],
            adam_beta2=BETAS[1],
            max_grad_norm=GRAD_CLIP,
            lr_scheduler_type="cosine",
            warmup_steps=args.warmup_steps,
            optim="adamw_torch",
            logging_strategy="no",
            save_strategy="no",
            eval_strategy="no",
            report_to="none",
            disable_tqdm=True,
            use_cpu=True,
            dataloader_num_workers=0,
            seed=args.seed,
        )
        trainer = Trainer(
            model=WithLoss(model),
            args=training_args,
            train_dataset=Blocks(inputs, targets),
            callbacks=[clock],
        )
        output = trainer.train()
    ended, cpu_ended = time.perf_counter(), cpu()
    tokens = args.steps * args.batch_size * args.block_size
    return {
        "tokens": tokens,
        "steady_tokens": tokens - args.batch_size * args.block_size,
        "steady_s": ended - clock.after_first,
        "steady_cpu_s": cpu_ended - clock.cpu_after_first,
        "total_s": ended - started,
        "first_loss": None,
        "final_loss": output.training_loss,  # the mean over the run (logging is off)
    }


VARIANTS = {"functional": run_functional, "hand": run_hand, "hf": run_hf}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = parser.parse_args()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and args.variant != "functional":
        parser.error("only the functional trainer runs under torchrun (it counts every rank)")
    if args.compile and args.variant == "hf":
        parser.error("--compile is for the functional trainer and the hand loop")

    torch.set_num_threads(args.threads)
    tokenizer = get_tokenizer("bytes")
    records = get_data_loader("offline:tiny-corpus")
    model = get_model(
        "decoder_only",
        vocab_size=tokenizer.vocab_size,
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_embd=args.n_embd,
        block_size=args.block_size,
        seed=args.seed,
    )
    rss_before = peak_rss_mb()
    result = VARIANTS[args.variant](model, tokenizer, records, args)
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            json.dumps(
                {
                    **result,
                    "variant": args.variant,
                    "compiled": args.compile,
                    "world_size": world,
                    "threads": torch.get_num_threads(),
                    "tokens_per_s": result["steady_tokens"] / result["steady_s"],
                    "tokens_per_cpu_s": result["steady_tokens"] / result["steady_cpu_s"],
                    "end_to_end_tokens_per_s": result["tokens"] / result["total_s"],
                    "rss_before_mb": rss_before,
                    "peak_rss_mb": peak_rss_mb(),
                    "parameters": sum(p.numel() for p in model.parameters()),
                }
            )
        )


if __name__ == "__main__":
    main()
    from codex_ml.training.distributed import exit_process, finalization_is_unsafe

    if finalization_is_unsafe():  # a torchrun worker, ended as `codex-ml train` ends one
        exit_process(0)
