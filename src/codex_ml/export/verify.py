"""An export checks itself before it is kept.

The folder, loaded by ``transformers`` alone, must encode the prompts to the
ids codex-ml encodes them to, and greedy generation from it must give exactly
the text that codex-ml's own greedy generation gives from the run's model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from codex_ml.export.errors import ExportMismatchError

#: Prompts the check generates from: a sentence, and one that fits any context.
VERIFY_PROMPTS = ("Once upon a time", "A")
#: New tokens generated for each (fewer where the model's context ends sooner).
VERIFY_NEW_TOKENS = 24


def verify_folder(
    folder: Path,
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str] = VERIFY_PROMPTS,
    max_new_tokens: int = VERIFY_NEW_TOKENS,
    *,
    exported_model: Any = None,
) -> int:
    """Raise :class:`ExportMismatchError` where ``folder`` differs from the run.

    ``exported_model`` is the folder's model as loaded by other means (a base
    with ``peft``'s adapter on it); by default ``transformers`` loads it.
    Returns how many prompts were compared (a prompt longer than the model's
    context is skipped).
    """
    from transformers import AutoTokenizer

    if exported_model is None:
        exported_model = load_exported_model(folder, device=_device_of(model))
    exported_tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    compared = sum(
        _compare(prompt, model, tokenizer, exported_model, exported_tokenizer, max_new_tokens)
        for prompt in prompts
    )
    if not compared:
        raise ExportMismatchError(
            f"{folder}: no prompt fits the model's context, so the export could not be checked."
        )
    return compared


def load_exported_model(folder: Path, device: Any = "cpu") -> Any:
    """The folder's model as ``transformers`` loads it; every weight must be in the file."""
    from transformers import AutoModelForCausalLM

    model, info = AutoModelForCausalLM.from_pretrained(
        folder, local_files_only=True, use_safetensors=True, output_loading_info=True
    )
    faults = {
        kind: sorted(map(str, info.get(kind) or ()))
        for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")
    }
    faults = {kind: keys for kind, keys in faults.items() if keys}
    if faults:
        raise ExportMismatchError(
            f"transformers loads the written {type(model).__name__} with weights that do not "
            f"fit it ({faults}); the export was not kept. This is a bug in codex-ml's export."
        )
    return model.to(device).eval()


def _compare(
    prompt: str,
    model: Any,
    tokenizer: Any,
    exported_model: Any,
    exported_tokenizer: Any,
    max_new_tokens: int,
) -> int:
    """1 when ``prompt`` gave the same text both ways, 0 when it does not fit the context."""
    from codex_ml.models.sampling import context_length
    from codex_ml.run.scoring import complete

    ids = tokenizer.encode(prompt)
    with_specials = getattr(tokenizer, "add_special_tokens", True)
    exported_ids = exported_tokenizer(prompt, add_special_tokens=with_specials)["input_ids"]
    if list(exported_ids) != list(ids):
        raise ExportMismatchError(
            f"the exported tokenizer encodes {prompt!r} as {list(exported_ids)[:12]}, codex-ml "
            f"as {list(ids)[:12]}; the export was not kept. This is a bug in codex-ml's export."
        )
    context = context_length(model)
    budget = max_new_tokens if context is None else min(max_new_tokens, context - len(ids))
    if not ids or budget < 1:
        return 0
    expected = complete(
        model, tokenizer, [prompt], max_new_tokens=budget, temperature=0.0, top_k=None, seed=0
    )[0]
    got = greedy_completion(exported_model, exported_tokenizer, ids, budget)
    if got != expected:
        raise ExportMismatchError(
            f"greedy generation from the exported folder continues {prompt!r} with {got!r}, "
            f"codex-ml with {expected!r}; the export was not kept. This is a bug in codex-ml's "
            "export (or float rounding between the two implementations tipped a near tie)."
        )
    return 1


def greedy_completion(model: Any, tokenizer: Any, ids: Sequence[int], max_new_tokens: int) -> str:
    """What ``transformers``' greedy ``generate`` adds after ``ids``, as text."""
    import torch

    device = _device_of(model)
    input_ids = torch.tensor([list(ids)], dtype=torch.long, device=device)
    output = model.generate(
        input_ids,
        attention_mask=torch.ones_like(input_ids),
        do_sample=False,
        max_new_tokens=max_new_tokens,
    )
    return str(tokenizer.decode(output[0, len(ids) :].tolist(), skip_special_tokens=True))


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No progress bars or advice from ``transformers`` in the command's output."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _device_of(model: Any) -> Any:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else "cpu"
