"""A deterministic, rule-based reward model for offline experiments.

``HeuristicRewardModel().evaluate(prompt, completion)`` sums the rules below
and clips the total to [-1, 1]; ``explain`` returns each rule's contribution.

Rules (defaults in brackets; each weight is a keyword option):

- **empty**: an empty or white-space-only completion scores -1 outright.
- **explanation** [+0.15]: the completion explains itself ("because",
  "for example", "this means", "in other words", "which means", "so that").
- **steps** [+0.15]: it has at least two list lines (``1.``, ``2)``, ``-``, ``*``)
  or two different ordered-step words ("first", "then", "next", "finally").
- **code** [+0.15]: it holds a fenced code block (a line starting with three backticks).
- **prompt_overlap** [+0.4 x overlap]: the fraction of the prompt's content
  words (lower case, letters and digits, common stop words removed) that the
  completion also uses.
- **banned_phrases** [-1.5 each]: every distinct banned phrase it contains,
  matched case-insensitively, with any run of white space where the phrase has
  a space. A phrase starting with a letter must start a word (``perform`` does
  not contain ``rm``); a phrase ending in ``/`` or ``~`` must not go on into a
  longer path (``rm -rf /tmp/build`` is not ``rm -rf /``); otherwise a phrase
  matches as a prefix (``mkfs`` matches ``mkfs.ext4``). The built-in list is
  destructive commands: ``rm -rf /``, fork bombs, ``mkfs``, ``dd`` onto a
  disk, ``DROP TABLE``/``DROP DATABASE`` and the like (``DEFAULT_BANNED_PHRASES``).
- **length** [-0.5 x excess]: words beyond ``max_words`` (200), as a fraction
  of ``max_words``, capped at 1.
- **repetition** [-0.5 x repeated]: the fraction of the completion's word
  trigrams that repeat an earlier trigram.

Markers earn a reward once per rule, however often they appear, so a
completion cannot farm the score by repeating them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import final

#: Destructive commands and statements penalised when no list is given.
DEFAULT_BANNED_PHRASES: tuple[str, ...] = (
    "rm -rf /",
    "rm -fr /",
    "rm -rf ~",
    "rm -rf *",
    "rm -rf --no-preserve-root",
    ":(){ :|:& };:",
    ":(){:|:&};:",
    "mkfs",
    "dd if=/dev/zero of=/dev/sd",
    "dd if=/dev/urandom of=/dev/sd",
    "dd if=/dev/random of=/dev/sd",
    "> /dev/sda",
    "chmod -R 777 /",
    "drop table",
    "drop database",
    "format c:",
)

#: The rules, in the order ``explain`` reports them (before ``total``).
RULES: tuple[str, ...] = (
    "empty",
    "explanation",
    "steps",
    "code",
    "prompt_overlap",
    "banned_phrases",
    "length",
    "repetition",
)

_WORD = re.compile(r"[a-z0-9]+")
_LIST_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*])\s+\S", re.MULTILINE)
_STEP_WORDS = re.compile(r"\b(?:first|then|next|finally)\b", re.IGNORECASE)
_EXPLANATION = re.compile(
    r"\b(?:because|for example|for instance|this means|which means|in other words|so that)\b",
    re.IGNORECASE,
)
_CODE_FENCE = re.compile(r"^\s*```", re.MULTILINE)
_STOP_WORD_TEXT = (
    "a an and are as at be but by can do does for from how i in is it me my of on or "
    "please should that the this to was what when where which who why will with you your"
)
_STOP_WORDS = frozenset(_STOP_WORD_TEXT.split())


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    # See "banned_phrases" in the module docstring for why each boundary is there.
    words = phrase.split()
    body = r"\s+".join(re.escape(word) for word in words)
    lead = r"(?<!\w)" if re.match(r"\w", words[0]) else ""
    trail = r"(?![\w/.~-])" if words[-1][-1] in "/~" else ""
    return re.compile(lead + body + trail, re.IGNORECASE)


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS}


def _check_weight(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"HeuristicRewardModel {name} must be a finite number, got {value!r}.")
    if value < 0:
        raise ValueError(
            f"HeuristicRewardModel {name} must be >= 0 (it is a magnitude; the rule decides "
            f"the sign), got {value}."
        )
    return float(value)


@final
class HeuristicRewardModel:
    """Deterministic rule-based reward in [-1, 1]: helpful, on-topic, safe, concise."""

    def __init__(
        self,
        *,
        max_words: int = 200,
        banned_phrases: Sequence[str] | None = None,
        marker_weight: float = 0.15,
        overlap_weight: float = 0.4,
        banned_penalty: float = 1.5,
        length_penalty: float = 0.5,
        repetition_penalty: float = 0.5,
    ) -> None:
        if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1:
            raise ValueError(
                f"HeuristicRewardModel max_words must be a positive int, got {max_words!r}."
            )
        if banned_phrases is None:
            banned_phrases = DEFAULT_BANNED_PHRASES
        if isinstance(banned_phrases, str) or not all(
            isinstance(p, str) and p.strip() for p in banned_phrases
        ):
            raise TypeError(
                "HeuristicRewardModel banned_phrases must be a list of non-empty strings (or None "
                f"for the built-in list), got {banned_phrases!r}."
            )
        self.max_words: int = max_words
        self.banned_phrases: tuple[str, ...] = tuple(banned_phrases)
        self._banned = [_phrase_pattern(p) for p in self.banned_phrases]
        self.marker_weight: float = _check_weight("marker_weight", marker_weight)
        self.overlap_weight: float = _check_weight("overlap_weight", overlap_weight)
        self.banned_penalty: float = _check_weight("banned_penalty", banned_penalty)
        self.length_penalty: float = _check_weight("length_penalty", length_penalty)
        self.repetition_penalty: float = _check_weight("repetition_penalty", repetition_penalty)

    def evaluate(self, prompt: str, completion: str) -> float:
        """The clipped sum of all rules for one (prompt, completion) pair."""
        return self.explain(prompt, completion)["total"]

    def batch_evaluate(self, pairs: Iterable[tuple[str, str]]) -> list[float]:
        """``evaluate`` for each ``(prompt, completion)`` pair, in order."""
        scores = []
        for index, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(
                    f"batch_evaluate needs (prompt, completion) pairs; item {index} is {pair!r}."
                )
            scores.append(self.evaluate(*pair))
        return scores

    def explain(self, prompt: str, completion: str) -> dict[str, float]:
        """Each rule's contribution to the score, and the clipped ``total``."""
        for name, value in (("prompt", prompt), ("completion", completion)):
            if not isinstance(value, str):
                raise TypeError(
                    f"HeuristicRewardModel scores text: {name} must be a str, got "
                    f"{type(value).__name__}. Decode token ids to text first."
                )
        parts = dict.fromkeys(RULES, 0.0)
        if not completion.strip():
            parts["empty"] = -1.0
        else:
            words = completion.lower().split()
            parts["explanation"] = self.marker_weight * bool(_EXPLANATION.search(completion))
            parts["steps"] = self.marker_weight * self._has_steps(completion)
            parts["code"] = self.marker_weight * bool(_CODE_FENCE.search(completion))
            parts["prompt_overlap"] = self.overlap_weight * _overlap(prompt, completion)
            found = sum(1 for pattern in self._banned if pattern.search(completion))
            parts["banned_phrases"] = -self.banned_penalty * found
            excess = max(0, len(words) - self.max_words) / self.max_words
            parts["length"] = -self.length_penalty * min(1.0, excess)
            parts["repetition"] = -self.repetition_penalty * _repeated_fraction(words)
        total = max(-1.0, min(1.0, sum(parts.values())))
        # "+ 0.0" turns the -0.0 of an unused penalty into a plain 0.0 for readers.
        return {**{rule: value + 0.0 for rule, value in parts.items()}, "total": total}

    @staticmethod
    def _has_steps(completion: str) -> bool:
        if len(_LIST_LINE.findall(completion)) >= 2:
            return True
        return len({word.lower() for word in _STEP_WORDS.findall(completion)}) >= 2

    def __repr__(self) -> str:
        return (
            f"HeuristicRewardModel(max_words={self.max_words}, "
            f"{len(self.banned_phrases)} banned phrases)"
        )


def _overlap(prompt: str, completion: str) -> float:
    prompt_words = _content_words(prompt)
    if not prompt_words:
        return 0.0
    return len(prompt_words & _content_words(completion)) / len(prompt_words)


def _repeated_fraction(words: list[str]) -> float:
    trigrams = list(zip(words, words[1:], words[2:], strict=False))
    if not trigrams:
        return 0.0
    return 1.0 - len(set(trigrams)) / len(trigrams)
