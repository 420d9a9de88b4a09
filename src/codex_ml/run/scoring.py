"""Score a model: token metrics on held-out text, text metrics on generations, rewards.

Each configured metric says what it scores (``input``):

- ``token-nll``: per-token negative log-likelihoods of the eval text (``ppl``);
- ``token-ids``: predicted vs. target token ids of the eval text (``accuracy@token``);
- ``generations``: the completions of the sample prompts (``dist-1``, ``dist-2``);
- ``references``: completions of the data's prompts against its references, for
  records written ``prompt<TAB>reference`` (``exact_match``, ``f1``, weighted accuracy).

A metric whose input the data cannot give is reported as skipped, with why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def split_reference(record: str) -> tuple[str, str | None]:
    """``"prompt<TAB>reference"`` -> (prompt, reference); a plain record has no reference."""
    prompt, tab, reference = record.partition("\t")
    return (prompt, reference.strip()) if tab else (record, None)


def token_predictions(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    block_size: int,
    batch_size: int,
    max_batches: int,
    split: Any = None,
) -> tuple[Any, Any, Any]:
    """Per-token NLLs, predicted ids and target ids over packed eval blocks.

    ``split``: the token store's held-out split; when it holds instruction data
    (flags), its examples are scored instead of ``texts``, and only the tokens
    that carry the loss (predicted and target ids of the others are kept, with
    target ``-100``, which the token metrics skip).
    """
    import torch

    from codex_ml.models.sampling import context_length
    from codex_ml.training.data import build_blocks
    from codex_ml.training.eval_batches import block_batches, eval_batches
    from codex_ml.training.examples import example_batches

    limit = context_length(model)
    block_size = min(block_size, limit) if limit else block_size
    device = next(model.parameters()).device
    flags = split.token_flags() if hasattr(split, "token_flags") else None
    if flags is not None:
        batches: Any = example_batches(
            split.token_ids(),
            flags,
            block_size=block_size,
            batch_size=batch_size,
            max_batches=max_batches,
        )
    else:
        blocks = build_blocks(tokenizer, texts, block_size, name="eval data")
        batches = block_batches(blocks, batch_size=batch_size, max_batches=max_batches)
    nlls, predictions, targets = [], [], []
    for batch in eval_batches(model, batches, device=device):
        nlls.append(batch.token_nlls().cpu())
        predictions.append(batch.logits.float().argmax(-1).flatten().cpu())
        targets.append(batch.targets.flatten().cpu())
    return torch.cat(nlls), torch.cat(predictions), torch.cat(targets)


def complete(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    seed: int,
) -> list[str]:
    """One sampled completion (text after the prompt) per prompt, reproducible for a seed."""
    import torch

    from codex_ml.models.sampling import context_length, generate

    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    completions = []
    was_training = model.training
    model.eval()
    try:
        for prompt in prompts:
            ids = tokenizer.encode(prompt) or [tokenizer.bos_id]
            input_ids = torch.tensor([ids], dtype=torch.long, device=device)
            out = generate(
                model,
                input_ids,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                top_k=top_k,
                eos_id=tokenizer.eos_id,
                block_size=context_length(model),
                generator=generator,
            )
            completions.append(tokenizer.decode(out[0, len(ids) :].tolist()))
    finally:
        model.train(was_training)
    return completions


def score(
    model: Any,
    tokenizer: Any,
    eval_records: Sequence[str],
    metrics: Mapping[str, tuple[Any, str]],
    reward_model: Any,
    settings: Mapping[str, Any],
    eval_split: Any = None,
) -> dict[str, Any]:
    """Every configured metric, the reward of each generation, and the samples themselves.

    ``eval_split``: the token store's held-out split, whose examples the token
    metrics score when it holds instruction data (see :func:`token_predictions`).
    """
    sampling = _sampling(settings)
    pairs = [split_reference(record) for record in eval_records]
    texts = [
        prompt if reference is None else f"{prompt} {reference}" for prompt, reference in pairs
    ]
    with_refs = [(p, r) for p, r in pairs if r is not None]
    needs = {metric_input for _, metric_input in metrics.values()}

    inputs: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    if needs & {"token-nll", "token-ids"} and texts:
        inputs, skipped = _token_inputs(model, tokenizer, texts, settings, eval_split)
    prompts = list(settings.get("sample_prompts") or [])
    generations = complete(model, tokenizer, prompts, **sampling) if prompts else []
    inputs["generations"] = (generations, None) if generations else None
    answers: list[dict[str, str]] = []
    if with_refs and "references" in needs:
        answers = _reference_answers(model, tokenizer, with_refs, sampling)
        inputs["references"] = ([a["answer"] for a in answers], [a["reference"] for a in answers])

    results = _metric_results(metrics, inputs, skipped)
    samples, reward = _rewarded_samples(reward_model, prompts, generations)
    report: dict[str, Any] = {"metrics": results, "samples": samples}
    if answers:  # what the reference metrics scored, so a reader can check them
        report["answers"] = answers
    if reward:
        report["reward"] = reward
    return report


def _sampling(settings: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`complete`'s sampling arguments from the run settings."""
    return dict(
        max_new_tokens=int(settings.get("max_new_tokens", 64)),
        temperature=float(settings.get("temperature", 0.8)),
        top_k=settings.get("top_k"),
        seed=int(settings.get("seed", 0)),
    )


def _token_inputs(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    settings: Mapping[str, Any],
    split: Any = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``token-nll`` and ``token-ids`` inputs, or why both are skipped."""
    try:
        nll, predicted, target = token_predictions(
            model,
            tokenizer,
            texts,
            block_size=int(settings.get("block_size", 128)),
            batch_size=int(settings.get("batch_size", 8)),
            max_batches=int(settings.get("eval_max_batches", 20)),
            split=split,
        )
    except ValueError as exc:  # eval text shorter than one block
        return {}, {"token-nll": str(exc), "token-ids": str(exc)}
    inputs = {"token-nll": (nll.tolist(), None), "token-ids": (predicted.tolist(), target.tolist())}
    return inputs, {}


def _reference_answers(
    model: Any,
    tokenizer: Any,
    with_refs: Sequence[tuple[str, str]],
    sampling: Mapping[str, Any],
) -> list[dict[str, str]]:
    """The model's answer to each prompt that has a reference, beside that reference."""
    completions = complete(model, tokenizer, [p for p, _ in with_refs], **sampling)
    return [
        {"prompt": p, "reference": r, "answer": c.strip()}
        for (p, r), c in zip(with_refs, completions, strict=True)
    ]


def _metric_results(
    metrics: Mapping[str, tuple[Any, str]],
    inputs: Mapping[str, Any],
    skipped: Mapping[str, str],
) -> dict[str, Any]:
    """Each metric's value on its input, or ``{"skipped": why}`` where the input is missing."""
    results: dict[str, Any] = {}
    for alias, (metric, metric_input) in metrics.items():
        given = inputs.get(metric_input)
        if given is None:
            results[alias] = {"skipped": skipped.get(metric_input) or _why_skipped(metric_input)}
        else:
            results[alias] = float(metric(*given))
    return results


def _rewarded_samples(
    reward_model: Any, prompts: Sequence[str], generations: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each sample with its reward (and rule terms), and the rewards' summary (empty if none)."""
    rewards = reward_model.batch_evaluate(list(zip(prompts, generations, strict=True)))
    terms = reward_terms(reward_model, prompts, generations)
    samples = [
        {"prompt": p, "completion": c, "reward": float(r), **({"reward_terms": t} if t else {})}
        for p, c, r, t in zip(prompts, generations, rewards, terms, strict=True)
    ]
    if not rewards:
        return samples, {}
    summary = {
        "mean": sum(rewards) / len(rewards),
        "min": min(rewards),
        "max": max(rewards),
        "terms": {
            rule: sum(t.get(rule, 0.0) for t in terms) / len(terms)
            for rule in dict.fromkeys(rule for t in terms for rule in t)
        },
    }
    return samples, summary


def reward_terms(
    reward_model: Any, prompts: Sequence[str], completions: Sequence[str]
) -> list[dict[str, float]]:
    """What each rule contributed to each sample's reward, where the model can ``explain``.

    A reward of 0.0 reads as broken unless one can see that no rule fired;
    only the rules that did are kept.
    """
    explain = getattr(reward_model, "explain", None)
    if not callable(explain):
        return [{} for _ in prompts]
    found = []
    for prompt, completion in zip(prompts, completions, strict=True):
        parts = explain(prompt, completion)
        found.append({k: float(v) for k, v in parts.items() if k != "total" and v})
    return found


def _why_skipped(metric_input: str) -> str:
    return {
        "references": "the eval data has no references (write records as 'prompt<TAB>reference')",
        "generations": "no sample prompts (run.sample_prompts is empty)",
    }.get(metric_input, "the eval split is empty")
