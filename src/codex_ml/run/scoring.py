"""Score a model: token metrics on held-out text, text metrics on generations, rewards.

Each configured metric says what it scores (``input``):

- ``token-nll``: per-token negative log-likelihoods of the held-out split (``ppl``);
- ``token-ids``: predicted vs. target token ids of the held-out split (``accuracy@token``);
- ``generations``: the completions of the sample prompts (``dist-1``, ``dist-2``);
- ``references``: completions of the data's prompts against its references, for
  records written ``prompt<TAB>reference`` (``exact_match``, ``f1``, weighted accuracy).

A metric whose input the data cannot give is reported as skipped, with why.
The held-out split is scored once, whole unless capped (:mod:`codex_ml.run.held_out`);
its loss, perplexity, token accuracy and ``bits_per_byte`` are the report's
``held_out`` numbers whatever metrics are configured, and the ``ppl`` and
``accuracy@token`` metrics read the same tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from codex_ml.run.held_out import HeldOut, HeldOutScore, score_held_out


def split_reference(record: str) -> tuple[str, str | None]:
    """``"prompt<TAB>reference"`` -> (prompt, reference); a plain record has no reference."""
    prompt, tab, reference = record.partition("\t")
    return (prompt, reference.strip()) if tab else (record, None)


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


def scoring_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """``run.*`` with the trainer's block and batch size: how a run's model is scored."""
    training = config.get("training") or {}
    return {
        **(config.get("run") or {}),
        "block_size": training.get("block_size", 128),
        "batch_size": training.get("batch_size", 8),
    }


def score(
    model: Any,
    tokenizer: Any,
    held_out: HeldOut | None,
    eval_records: Sequence[str],
    metrics: Mapping[str, tuple[Any, str]],
    reward_model: Any,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """The held-out split's numbers, every configured metric, the rewards, and the samples.

    ``held_out`` is the split the token metrics score (all of it, unless
    ``settings["eval_max_tokens"]`` caps it); ``eval_records`` are held-out
    records as text, for the metrics that read references.
    """
    sampling = _sampling(settings)
    pairs = [split_reference(record) for record in eval_records]
    with_refs = [(p, r) for p, r in pairs if r is not None]
    needs = {metric_input for _, metric_input in metrics.values()}

    found = _score_held_out(model, tokenizer, held_out, needs, settings)
    inputs = _token_inputs(found)
    prompts = list(settings.get("sample_prompts") or [])
    generations = complete(model, tokenizer, prompts, **sampling) if prompts else []
    inputs["generations"] = (generations, None) if generations else None
    answers: list[dict[str, str]] = []
    if with_refs and "references" in needs:
        answers = _reference_answers(model, tokenizer, with_refs, sampling)
        inputs["references"] = ([a["answer"] for a in answers], [a["reference"] for a in answers])

    results = _metric_results(metrics, inputs)
    samples, reward = _rewarded_samples(reward_model, prompts, generations)
    report: dict[str, Any] = {"metrics": results, "samples": samples}
    if found is not None:
        report.update(held_out_report(found))
    if answers:  # what the reference metrics scored, so a reader can check them
        report["answers"] = answers
    if reward:
        report["reward"] = reward
    return report


def held_out_report(found: HeldOutScore) -> dict[str, Any]:
    """The report's ``held_out`` numbers (``bits_per_byte`` among them), and how much was scored."""
    numbers: dict[str, Any] = dict(found.numbers())
    report: dict[str, Any] = {"held_out": numbers, "eval_tokens": found.tokens}
    if found.bits_per_byte is not None:
        numbers["bits_per_byte"] = found.bits_per_byte
        report["eval_bytes"] = found.text_bytes
    else:
        report["bits_per_byte_skipped"] = found.bytes_unknown
    return report


def _sampling(settings: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`complete`'s sampling arguments from the run settings."""
    return dict(
        max_new_tokens=int(settings.get("max_new_tokens", 64)),
        temperature=float(settings.get("temperature", 0.8)),
        top_k=settings.get("top_k"),
        seed=int(settings.get("seed", 0)),
    )


def _score_held_out(
    model: Any,
    tokenizer: Any,
    held_out: HeldOut | None,
    needs: set[str],
    settings: Mapping[str, Any],
) -> HeldOutScore | None:
    """The held-out split scored (None when nothing is held out)."""
    if held_out is None or held_out.target_tokens == 0:
        return None
    cap = settings.get("eval_max_tokens")
    return score_held_out(
        model,
        tokenizer,
        held_out,
        block_size=int(settings.get("block_size", 128)),
        batch_size=int(settings.get("batch_size", 8)),
        max_tokens=None if cap is None else int(cap),
        keep=frozenset(needs & {"token-nll", "token-ids"}),
    )


def _token_inputs(found: HeldOutScore | None) -> dict[str, Any]:
    """The ``token-nll`` and ``token-ids`` inputs the scored split gives (none if nothing was)."""
    inputs: dict[str, Any] = {}
    if found is not None and found.nlls is not None:
        inputs["token-nll"] = (found.nlls, None)
    if found is not None and found.predictions is not None:
        inputs["token-ids"] = (found.predictions, found.targets)
    return inputs


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
) -> dict[str, Any]:
    """Each metric's value on its input, or ``{"skipped": why}`` where the input is missing."""
    results: dict[str, Any] = {}
    for alias, (metric, metric_input) in metrics.items():
        given = inputs.get(metric_input)
        if given is None:
            results[alias] = {"skipped": _why_skipped(metric_input)}
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
