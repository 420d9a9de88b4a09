"""GPT-2-small-sized training on one GPU: codex-ml's trainer against a hand-written loop.

Run through ``benchmarks/gpu.sh`` (which installs what is missing). Every
variant trains a fresh ``decoder_only`` (n_layer=12, n_head=12, n_embd=768,
block_size=1024, learned positions, tied embeddings, vocab 50304: 124M
parameters) in bf16 autocast (``--precision fp16``: fp16 with a gradient
scaler, for GPUs without bf16) on the same synthetic random tokens, with the
same batch, AdamW (fused), warmup + cosine schedule and gradient clipping.
Four variants: the trainer eager and with ``compile=True``, and the hand loop
eager and ``torch.compile``d (``--no-compile`` runs only the eager two). The
goals of issue 12: the compiled trainer at >= 40% MFU (llm.c's level) and at
>= 1.0x the compiled hand loop. ``--device cpu`` with a tiny model
(``--n-layer 1 --n-embd 32 ...``) checks the script without a GPU.

Throughput is measured after ``--warmup-steps`` untimed steps (cuBLAS and
allocator warm-up). MFU follows nanoGPT / PaLM appendix B: per token,
``6 * N`` flops for the parameters (N excluding the position table, as
nanoGPT's ``estimate_mfu``) plus ``12 * n_layer * n_embd * block_size`` for
attention (no discount for the causal mask), against the card's dense bf16
peak: 989 TFLOPS for an H100 SXM (756 for H100 PCIe), or ``--peak-tflops``.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

from codex_ml.models.decoder_only import build_decoder_only
from codex_ml.training.functional import FunctionalTrainer

VOCAB = 50304  # GPT-2's 50257, padded to a multiple of 64 as in nanoGPT
EOS_ID = 50256
BETAS, WEIGHT_DECAY, GRAD_CLIP = (0.9, 0.95), 0.1, 1.0
CODEX, CODEX_COMPILED = "codex-ml offline:functional", "codex-ml offline:functional, compile=true"
HAND, HAND_COMPILED = "hand-written loop", "hand-written loop, torch.compile"


class SyntheticTokens:
    """A "tokenizer" for synthetic data: record ``"i"`` encodes to the i-th chunk of random ids."""

    eos_id = EOS_ID
    vocab_size = VOCAB

    def __init__(self, n_chunks: int, chunk: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.chunks = torch.randint(0, EOS_ID, (n_chunks, chunk), generator=generator).tolist()

    def records(self) -> list[str]:
        return [str(i) for i in range(len(self.chunks))]

    def encode(self, text: str) -> list[int]:
        return self.chunks[int(text)]


def build_model(args: argparse.Namespace) -> torch.nn.Module:
    return build_decoder_only(
        vocab_size=VOCAB,
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_embd=args.n_embd,
        block_size=args.block_size,
        positions="learned",
        device=args.device,
        seed=args.seed,
    )


def flops_per_token(model: torch.nn.Module, args: argparse.Namespace) -> float:
    positions = sum(
        m.weight.numel()
        for m in model.modules()
        if isinstance(m, torch.nn.Embedding) and m.weight.shape[0] == args.block_size
    )
    n = sum(p.numel() for p in model.parameters()) - positions
    return 6 * n + 12 * args.n_layer * args.n_embd * args.block_size


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_flops(args: argparse.Namespace) -> tuple[float, str]:
    if not args.device.startswith("cuda"):
        return math.nan, "n/a (not a GPU)"
    name = torch.cuda.get_device_name()
    if args.peak_tflops:
        return args.peak_tflops * 1e12, f"{args.peak_tflops:g} TFLOPS (given)"
    if "H100" in name and "PCIe" in name:
        return 756e12, "756 TFLOPS (H100 PCIe dense bf16)"
    if "H100" in name or "H200" in name or "GH200" in name:
        return 989e12, "989 TFLOPS (H100 SXM dense bf16)"
    return 989e12, f"989 TFLOPS (H100 SXM figure; {name} is not an H100: pass --peak-tflops)"


def lr_at(step: int, args: argparse.Namespace) -> float:
    """What the functional trainer does: linear warmup, cosine to lr / 10."""
    warmup = args.lr_warmup
    if step <= warmup:
        return args.lr * step / warmup
    progress = min(1.0, (step - warmup) / max(1, args.total_steps - warmup))
    return args.lr * (0.1 + 0.45 * (1.0 + math.cos(math.pi * progress)))


def run_codex(data: SyntheticTokens, args: argparse.Namespace, *, compile_model: bool) -> dict:
    model = build_model(args)
    trainer = FunctionalTrainer(
        max_steps=args.total_steps,
        batch_size=args.batch_size,
        block_size=args.block_size,
        lr=args.lr,
        warmup_steps=args.lr_warmup,
        log_every=args.warmup_steps,  # a log record (and GPU sync) at the end of the warm-up
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        compile=compile_model,
    )
    result = trainer(model, data, data.records())
    logs = [r for r in result.history if r.get("event") == "log"]
    warm = next(r for r in logs if r["step"] == args.warmup_steps)
    last = logs[-1]
    return {
        "tokens_per_s": (last["tokens_seen"] - warm["tokens_seen"])
        / (last["elapsed"] - warm["elapsed"]),
        "final_loss": last["loss"],
        "model": model,
    }


def run_hand(data: SyntheticTokens, args: argparse.Namespace, *, compile_model: bool) -> dict:
    model = build_model(args)
    step_model = torch.compile(model) if compile_model else model
    ids = []
    for record in data.records():
        ids += data.encode(record)
        ids.append(EOS_ID)
    n_blocks = (len(ids) - 1) // args.block_size
    stream = torch.tensor(ids[: n_blocks * args.block_size + 1], device=args.device)
    blocks = stream.unfold(0, args.block_size + 1, args.block_size)
    inputs, targets = blocks[:, :-1].contiguous(), blocks[:, 1:].contiguous()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=args.lr,
        betas=BETAS,
        fused=True,
    )
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    device_type = torch.device(args.device).type
    dtype = torch.float16 if args.precision == "fp16" else torch.bfloat16
    scaler = torch.amp.GradScaler(device_type) if args.precision == "fp16" else None
    model.train()
    for step in range(1, args.total_steps + 1):
        if step == args.warmup_steps + 1:
            synchronize(args.device)
            started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args)
        index = torch.randint(
            len(inputs), (args.batch_size,), device=args.device, generator=generator
        )
        with torch.autocast(device_type=device_type, dtype=dtype):
            logits = step_model(input_ids=inputs[index]).logits
            loss = F.cross_entropy(logits.flatten(0, 1), targets[index].flatten())
        if scaler is None:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            scaler.step(optimizer)
            scaler.update()
        optimizer.zero_grad(set_to_none=True)
    final_loss = loss.item()  # synchronises
    elapsed = time.perf_counter() - started
    timed_tokens = args.steps * args.batch_size * args.block_size
    return {"tokens_per_s": timed_tokens / elapsed, "final_loss": final_loss, "model": model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300, help="timed steps per variant")
    parser.add_argument("--warmup-steps", type=int, default=20, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--n-layer", type=int, default=12)
    parser.add_argument("--n-head", type=int, default=12)
    parser.add_argument("--n-embd", type=int, default=768)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--lr", type=float, default=6e-4)
    parser.add_argument("--lr-warmup", type=int, default=20, help="learning-rate warmup steps")
    parser.add_argument("--data-tokens", type=int, default=4_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peak-tflops", type=float, default=0.0)
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also the compiled trainer and hand loop (default; --no-compile: eager only)",
    )
    parser.add_argument("--precision", choices=("bf16", "fp16"), default="bf16")
    parser.add_argument("--output", help="also write the results as JSON here")
    args = parser.parse_args()
    args.total_steps = args.warmup_steps + args.steps
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(
            "gpu_train.py: no CUDA device is visible to torch; run it on a GPU machine "
            "(or pass --device cpu with a tiny model to check the script)."
        )
    on_gpu = args.device.startswith("cuda")

    chunk = 8192
    data = SyntheticTokens(max(1, args.data_tokens // chunk), chunk, args.seed)
    peak, peak_text = peak_flops(args)
    variants = {
        CODEX: lambda: run_codex(data, args, compile_model=False),
        HAND: lambda: run_hand(data, args, compile_model=False),
    }
    if args.compile:
        variants[CODEX_COMPILED] = lambda: run_codex(data, args, compile_model=True)
        variants[HAND_COMPILED] = lambda: run_hand(data, args, compile_model=True)
    results = {}
    for name, run in variants.items():
        started = time.perf_counter()
        if on_gpu:
            torch.cuda.reset_peak_memory_stats()
        out = run()
        model = out.pop("model")
        flops = flops_per_token(model, args)
        results[name] = {
            **out,
            "mfu": out["tokens_per_s"] * flops / peak,
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if on_gpu else math.nan,
            "wall_s": time.perf_counter() - started,
            "parameters": sum(p.numel() for p in model.parameters()),
            "flops_per_token": flops,
        }
        del model
        if on_gpu:
            torch.cuda.empty_cache()
        r = results[name]
        print(
            f"{name:44s} {r['tokens_per_s']:>12,.0f} tokens/s  MFU {r['mfu']:6.1%}  "
            f"peak mem {r['peak_memory_gib']:5.1f} GiB  loss {r['final_loss']:.3f}  "
            f"({r['wall_s']:.0f} s)",
            flush=True,
        )
    codex, hand = results[CODEX], results[HAND]
    summary = {
        "device": torch.cuda.get_device_name() if on_gpu else args.device,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "peak": peak_text,
        "batch_size": args.batch_size,
        "block_size": args.block_size,
        "timed_steps": args.steps,
        "warmup_steps": args.warmup_steps,
        "precision": args.precision,
        "codex_vs_hand": codex["tokens_per_s"] / hand["tokens_per_s"],
        "results": results,
    }
    print(f"codex-ml / hand-written loop: {summary['codex_vs_hand']:.3f}x; peak = {peak_text}")
    if args.compile:
        compiled, hand_compiled = results[CODEX_COMPILED], results[HAND_COMPILED]
        summary["codex_compiled_vs_hand_compiled"] = (
            compiled["tokens_per_s"] / hand_compiled["tokens_per_s"]
        )
        summary["codex_compiled_mfu"] = compiled["mfu"]
        print(
            f"codex-ml compile=true / compiled hand loop: "
            f"{summary['codex_compiled_vs_hand_compiled']:.3f}x (goal >= 1.0); its MFU "
            f"{compiled['mfu']:.1%} (goal >= 40%)"
        )
    print(json.dumps(summary))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=1)


if __name__ == "__main__":
    main()
