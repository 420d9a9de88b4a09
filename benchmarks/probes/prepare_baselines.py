"""Probe: the two baselines of the token-store benchmark, in a fresh process each.

``raw``: read the text file's lines and tokenise them in batches the way the
fastest path of each tokenizer does (``encode_batch_fast`` over the Rust
backend for a BPE; one ``bytes`` join per batch for the byte tokenizer),
writing nothing: the limit a preparation cannot beat. ``nanogpt``: nanoGPT's ``prepare.py``
pattern, ``datasets.load_dataset("text")`` then ``.map(batched=True,
num_proc=N)`` and the ids written to a ``uint16`` ``np.memmap``. Prints one
JSON line: seconds, tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def tokenize_fn(tokenizer_dir: str | None):  # -> texts -> list of id lists (eos appended)
    if tokenizer_dir is None:
        return lambda texts: [[*list(t.encode("utf-8")), 258] for t in texts]
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(tokenizer_dir, "tokenizer.json"))
    eos = tok.token_to_id("<|endoftext|>")
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    return lambda texts: [[*e.ids, eos] for e in encode(texts, add_special_tokens=False)]


def raw(path: str, tokenizer_dir: str | None, batch_chars: int) -> dict:
    started = time.perf_counter()
    tokens = 0
    if tokenizer_dir is None:  # the byte tokenizer's ids are the UTF-8 bytes, eos between records

        def encode(texts: list[str], add_special_tokens: bool = False) -> list[bytes]:
            return [b"\xff".join(t.encode("utf-8") for t in texts)]

        count = len  # one id per byte, the joining 0xFF bytes standing for eos ids
    else:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(os.path.join(tokenizer_dir, "tokenizer.json"))
        encode = getattr(tok, "encode_batch_fast", tok.encode_batch)

        def count(encoding: object) -> int:
            return len(encoding.ids) + 1

    batch: list[str] = []
    size = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            batch.append(line.rstrip("\n"))
            size += len(line)
            if size >= batch_chars:
                tokens += sum(count(e) for e in encode(batch, add_special_tokens=False))
                batch, size = [], 0
    if batch:
        tokens += sum(count(e) for e in encode(batch, add_special_tokens=False))
    return {"seconds": time.perf_counter() - started, "tokens": tokens}


def nanogpt(path: str, tokenizer_dir: str | None, num_proc: int) -> dict:
    import numpy as np

    cache = tempfile.mkdtemp(prefix="nanogpt-cache-")
    os.environ["HF_DATASETS_CACHE"] = cache
    import datasets

    datasets.disable_progress_bars()
    started = time.perf_counter()
    ds = datasets.load_dataset("text", data_files=path, split="train", cache_dir=cache)
    encode = tokenize_fn(tokenizer_dir)

    def process(batch):
        ids = encode(batch["text"])
        return {"ids": ids, "len": [len(i) for i in ids]}

    tokenized = ds.map(process, batched=True, remove_columns=["text"], num_proc=num_proc)
    total = int(np.sum(tokenized["len"], dtype=np.uint64))
    out = os.path.join(cache, "train.bin")
    arr = np.memmap(out, dtype=np.uint16, mode="w+", shape=(total,))
    idx = 0
    shards = 16
    for i in range(shards):
        chunk = tokenized.shard(num_shards=shards, index=i, contiguous=True).with_format("numpy")
        ids = np.concatenate(chunk["ids"]) if len(chunk) else np.empty(0, np.uint16)
        arr[idx : idx + len(ids)] = ids
        idx += len(ids)
    arr.flush()
    seconds = time.perf_counter() - started
    import shutil

    shutil.rmtree(cache, ignore_errors=True)
    return {"seconds": seconds, "tokens": total}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["raw", "nanogpt"])
    parser.add_argument("path")
    parser.add_argument("--tokenizer-dir")
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--batch-chars", type=int, default=4 << 20)
    args = parser.parse_args()
    if args.mode == "raw":
        result = raw(args.path, args.tokenizer_dir, args.batch_chars)
    else:
        result = nanogpt(args.path, args.tokenizer_dir, args.num_proc)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
