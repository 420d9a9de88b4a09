"""LoRA fine-tuning of one GPT-2 with codex-ml or with peft + transformers.Trainer; prints JSON.

Usage: ``python lora_train.py VARIANT --base DIR [options]``, where VARIANT is

- ``functional``: the base loaded by codex-ml's ``hf`` model key, LoRA applied
  by codex-ml's ``lora`` adapter (as ``adapter=lora`` does in a run), trained by
  ``offline:functional``;
- ``hf``: the same base loaded by ``AutoModelForCausalLM``, LoRA applied by
  ``peft.get_peft_model``, trained by ``transformers.Trainer``.

Both train the same base (the folder ``--base``), with the same LoRA settings
(rank, alpha, dropout, target modules), on the same blocks of the tiny corpus
through the byte tokenizer, with the loops of ``train.py`` (same optimiser,
schedule, clipping, batch, thread count; see its docstring for what is
reported).
"""

import argparse
import json

import torch
from train import peak_rss_mb, run_functional, run_hf

from codex_ml.registry import get_adapter, get_data_loader, get_model, get_tokenizer

#: The LoRA settings both variants use (GPT-2's attention projection, peft's default for it).
LORA = {"r": 8, "alpha": 16.0, "dropout": 0.05, "target_modules": ["c_attn"]}


def codex_ml_lora(base):
    from codex_ml.training.checkpoint.trainable import adapt

    model = get_model("hf", path=base)
    return adapt(model, get_adapter("lora", **LORA), name="lora", kwargs=LORA)


def peft_lora(base):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
    config = LoraConfig(
        r=LORA["r"],
        lora_alpha=LORA["alpha"],
        lora_dropout=LORA["dropout"],
        target_modules=LORA["target_modules"],
        fan_in_fan_out=True,  # GPT-2's Conv1D
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


VARIANTS = {"functional": (codex_ml_lora, run_functional), "hf": (peft_lora, run_hf)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--base", required=True, help="the GPT-2 folder both variants fine-tune")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.compile = False

    torch.set_num_threads(args.threads)
    tokenizer = get_tokenizer("bytes")
    records = get_data_loader("offline:tiny-corpus")
    prepare, train = VARIANTS[args.variant]
    model = prepare(args.base)
    rss_before = peak_rss_mb()
    result = train(model, tokenizer, records, args)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(
        json.dumps(
            {
                **result,
                "variant": args.variant,
                "threads": torch.get_num_threads(),
                "tokens_per_s": result["steady_tokens"] / result["steady_s"],
                "tokens_per_cpu_s": result["steady_tokens"] / result["steady_cpu_s"],
                "end_to_end_tokens_per_s": result["tokens"] / result["total_s"],
                "rss_before_mb": rss_before,
                "peak_rss_mb": peak_rss_mb(),
                "parameters": sum(p.numel() for p in model.parameters()),
                "trainable_parameters": trainable,
            }
        )
    )


if __name__ == "__main__":
    main()
