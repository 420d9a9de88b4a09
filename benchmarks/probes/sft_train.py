"""Fine-tune one GPT-2 on prompt/completion pairs with codex-ml or TRL's SFTTrainer; prints JSON.

Usage: ``python sft_train.py VARIANT --base DIR --data FILE [options]``, where VARIANT is

- ``functional``: the pairs read by codex-ml's ``jsonl`` loader
  (``prompt_field``/``completion_field``) into a token store (built before the
  clock starts), the base loaded by the ``hf`` model key, trained by
  ``offline:functional`` with ``packing=True``;
- ``trl``: the same file read by ``datasets``, the same base and tokenizer,
  trained by ``trl.SFTTrainer`` with ``packing=True`` (its default best-fit
  packing, which is padding-free) and its default completion-only loss.

Both: the loss counts only completion tokens (and the eos after them), batch
``--batch-size`` rows of ``--block-size`` tokens, AdamW (betas 0.9/0.95,
weight decay 0.1), warmup then cosine decay, gradient clipping at 1.0,
``torch.set_num_threads`` pinned, ``sdpa`` attention, the CPU.

Reported: ``answer_tokens_per_s``, the targets that carried the loss per
second over steps 2..N (the first step's one-time costs excluded), the same
per CPU second, ``tokens_per_s`` (every token of the batches), the final loss,
and the peak resident memory.
"""

import argparse
import json
import math
import resource
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

BETAS = (0.9, 0.95)
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0


def cpu():
    return time.process_time()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_functional(args):
    from codex_ml.data.store import TokenSplit, build_store
    from codex_ml.registry import (
        get_data_loader,
        get_model,
        get_registry,
        get_tokenizer,
        get_trainer,
    )

    tokenizer = get_tokenizer("hf", name_or_path=args.base)
    pairs = get_data_loader(
        "jsonl", path=args.data, prompt_field="prompt", completion_field="completion"
    )
    with tempfile.TemporaryDirectory() as work:
        store = build_store(
            Path(work) / "store", "sft", ((False, p) for p in pairs), tokenizer, {}, progress=False
        )
        model = get_model("hf", path=args.base, attn_implementation="sdpa")
        trainer = get_trainer(
            "offline:functional",
            max_steps=args.steps,
            batch_size=args.batch_size,
            block_size=args.block_size - 1,  # block_size + 1 tokens a row, as TRL's max_length
            lr=args.lr,
            warmup_steps=args.warmup_steps,
            weight_decay=WEIGHT_DECAY,
            optimizer=partial(get_registry("optimizer").get("adamw"), betas=BETAS),
            grad_clip=GRAD_CLIP,
            log_every=args.steps,  # logs (reads the loss back) at step 1 and the last step only
            num_threads=args.threads,
            device="cpu",
            precision="fp32",
            seed=args.seed,
            packing=True,
        )
        cpu_at_logs = []
        rss_before = peak_rss_mb()
        result = trainer(
            model,
            tokenizer,
            TokenSplit(store, "train"),
            callbacks=[lambda _: cpu_at_logs.append(cpu())],
        )
    first, last = result.history[0], result.history[-1]
    return {
        "answer_tokens": last["loss_tokens_seen"] - first["loss_tokens_seen"],
        "tokens": last["tokens_seen"] - first["tokens_seen"],
        "steady_s": last["elapsed"] - first["elapsed"],
        "steady_cpu_s": cpu_at_logs[-1] - cpu_at_logs[0],
        "final_loss": result.final_metrics["train_loss"],
        "rss_before_mb": rss_before,
    }


def run_trl(args):
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(args.base)
    model = AutoModelForCausalLM.from_pretrained(args.base, attn_implementation="sdpa")
    dataset = load_dataset("json", data_files=args.data, split="train")
    dataset = dataset.select_columns(["prompt", "completion"])
    counted = {"answer_tokens": 0, "tokens": 0}

    class Counting(SFTTrainer):
        """SFTTrainer, counting the targets that carry the loss in each batch it trains on."""

        def compute_loss(self, model, inputs, *rest, **kwargs):
            labels = inputs["labels"][..., 1:]  # the model shifts them: a label is a target
            counted["answer_tokens"] += int((labels != -100).sum())
            counted["tokens"] += int(inputs["input_ids"].numel())
            return super().compute_loss(model, inputs, *rest, **kwargs)

    class StepClock(TrainerCallback):
        def on_step_end(self, training_args, state, control, **kwargs):
            if state.global_step == 1:
                self.after_first, self.cpu_after_first = time.perf_counter(), cpu()
                self.counted_after_first = dict(counted)

    clock = StepClock()
    with tempfile.TemporaryDirectory() as output_dir:
        config = SFTConfig(
            output_dir=output_dir,
            max_length=args.block_size,
            packing=True,
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
        trainer = Counting(
            model=model,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[clock],
        )
        rss_before = peak_rss_mb()
        torch.set_num_threads(args.threads)
        output = trainer.train()
    ended, cpu_ended = time.perf_counter(), cpu()
    return {
        "answer_tokens": counted["answer_tokens"] - clock.counted_after_first["answer_tokens"],
        "tokens": counted["tokens"] - clock.counted_after_first["tokens"],
        "steady_s": ended - clock.after_first,
        "steady_cpu_s": cpu_ended - clock.cpu_after_first,
        "final_loss": output.training_loss,  # the mean over the run (logging is off)
        "rss_before_mb": rss_before,
    }


VARIANTS = {"functional": run_functional, "trl": run_trl}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--base", required=True, help="the GPT-2 folder (model and tokenizer)")
    parser.add_argument("--data", required=True, help="JSON Lines with prompt and completion")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = VARIANTS[args.variant](args)
    seconds = result["steady_s"]
    print(
        json.dumps(
            {
                **result,
                "variant": args.variant,
                "threads": torch.get_num_threads(),
                "answer_tokens_per_s": result["answer_tokens"] / seconds,
                "answer_tokens_per_cpu_s": result["answer_tokens"] / result["steady_cpu_s"],
                "tokens_per_s": result["tokens"] / seconds,
                "final_loss": result["final_loss"] if math.isfinite(result["final_loss"]) else None,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
