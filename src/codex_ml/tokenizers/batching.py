"""Turn per-text token ids into one rectangular batch: the part every tokenizer shares."""

from __future__ import annotations

from collections.abc import Sequence


def pad_batch(
    sequences: Sequence[Sequence[int]],
    *,
    pad_id: int,
    max_length: int | None = None,
    padding: bool = True,
    truncation: bool = True,
) -> dict[str, list[list[int]]]:
    """Truncate and right-pad ``sequences`` into ``{"input_ids", "attention_mask"}``.

    ``truncation`` cuts each row to ``max_length``; without it a longer row is an
    error rather than a batch that silently breaks the length the caller asked for.
    ``padding`` pads every row to the longest one with ``pad_id`` (mask 0), so the
    real tokens always come first and causal models never see padding before them.
    """
    if max_length is not None and (
        isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
    ):
        raise ValueError(f"max_length must be a positive int or None, got {max_length!r}.")
    rows = [list(ids) for ids in sequences]
    if max_length is not None:
        if truncation:
            rows = [ids[:max_length] for ids in rows]
        else:
            for index, ids in enumerate(rows):
                if len(ids) > max_length:
                    raise ValueError(
                        f"Text {index} has {len(ids)} tokens, more than max_length={max_length}, "
                        "and truncation=False. Pass truncation=True or a larger max_length."
                    )
    masks = [[1] * len(ids) for ids in rows]
    if padding and rows:
        width = max(len(ids) for ids in rows)
        for ids, mask in zip(rows, masks, strict=True):
            missing = width - len(ids)
            ids.extend([pad_id] * missing)
            mask.extend([0] * missing)
    return {"input_ids": rows, "attention_mask": masks}


class BatchEncodeMixin:
    """``batch_encode`` for any tokenizer with ``encode`` and ``pad_id``."""

    pad_id: int

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def batch_encode(
        self,
        texts: Sequence[str],
        *,
        max_length: int | None = None,
        padding: bool = True,
        truncation: bool = True,
    ) -> dict[str, list[list[int]]]:
        """Encode ``texts`` and right-pad them with ``pad_id`` (see :func:`pad_batch`)."""
        return pad_batch(
            [self.encode(text) for text in texts],
            pad_id=self.pad_id,
            max_length=max_length,
            padding=padding,
            truncation=truncation,
        )
