"""Instruction records: a prompt and its completion, or a chat, read from structured records.

The structured loaders (``jsonl``, ``csv``, ``parquet``, ``hf-datasets``) read
plain text from ``text_field``, or, given these settings, instruction examples:

- ``prompt_field`` and ``completion_field``: a :class:`PromptCompletion`;
  the completion is what the model learns to write;
- ``messages_field``: a :class:`Chat`, a list of ``{"role", "content"}``
  objects, rendered into text by the tokenizer's own chat template, or by
  codex-ml's plain one (:mod:`codex_ml.data.chat`) when ``chat_template="plain"``;
  the assistant's messages are what the model learns to write.

What an example's tokens are and which of them carry the loss is decided when
the token store is built (``codex_ml.data.store.examples``); a loader only
reads the fields, and names the file and line of a record that lacks one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from codex_ml.data.fields import check_text_field, field_text, field_value

#: ``chat_template`` values: None is the tokenizer's own template.
CHAT_TEMPLATES = ("plain",)


@dataclass(frozen=True, slots=True)
class PromptCompletion:
    """A prompt, and the completion the model is trained to write after it."""

    prompt: str
    completion: str


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a chat: who speaks (``system``, ``user``, ``assistant``...) and what."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Chat:
    """A conversation; the assistant's turns are what the model is trained to write.

    ``template``: None renders it with the tokenizer's chat template, ``"plain"``
    with codex-ml's (:data:`codex_ml.data.chat.PLAIN_TEMPLATE`).
    """

    messages: tuple[Message, ...]
    template: str | None = None

    def as_dicts(self) -> list[dict[str, str]]:
        """The messages as ``apply_chat_template`` takes them."""
        return [{"role": m.role, "content": m.content} for m in self.messages]


#: What a structured loader yields: plain text, or an instruction example.
Record = str | PromptCompletion | Chat


@dataclass(frozen=True)
class RecordShape:
    """Which fields of a structured record a loader reads, and what it makes of them."""

    text_field: str = "text"
    prompt_field: str | None = None
    completion_field: str | None = None
    messages_field: str | None = None
    chat_template: str | None = None

    def __post_init__(self) -> None:
        check_text_field(self.text_field)
        pair = (self.prompt_field, self.completion_field)
        for name in ("prompt_field", "completion_field", "messages_field"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} must be a field name or null, got {value!r}.")
        if (pair[0] is None) != (pair[1] is None):
            given, missing = (
                ("prompt_field", "completion_field")
                if pair[1] is None
                else ("completion_field", "prompt_field")
            )
            raise ValueError(
                f"{given} is set but {missing} is not: a prompt/completion example needs both "
                "(data.prompt_field=... data.completion_field=...)."
            )
        if self.messages_field is not None and pair[0] is not None:
            raise ValueError(
                "messages_field and prompt_field/completion_field are both set: a record is "
                "either a chat (messages_field) or a prompt and its completion, not both."
            )
        if self.chat_template is not None and self.chat_template not in CHAT_TEMPLATES:
            raise ValueError(
                f"chat_template={self.chat_template!r} is not one of "
                f"{', '.join(CHAT_TEMPLATES)} (or null: the tokenizer's own chat template)."
            )
        if self.chat_template is not None and self.messages_field is None:
            raise ValueError(
                f"chat_template={self.chat_template!r} is set without messages_field: a chat "
                "template renders chats only; set messages_field= to the field holding them."
            )

    @property
    def kind(self) -> str:
        """``text``, ``prompt-completion`` or ``messages``."""
        if self.messages_field is not None:
            return "messages"
        return "prompt-completion" if self.prompt_field is not None else "text"

    @property
    def fields(self) -> tuple[str, ...]:
        """The (possibly dotted) fields read from each record."""
        if self.messages_field is not None:
            return (self.messages_field,)
        if self.prompt_field is not None and self.completion_field is not None:
            return (self.prompt_field, self.completion_field)
        return (self.text_field,)

    @property
    def describe(self) -> str:
        """The fields as settings, for messages (``prompt_field='q'``...)."""
        names = {
            "text": ("text_field",),
            "prompt-completion": ("prompt_field", "completion_field"),
            "messages": ("messages_field",),
        }[self.kind]
        return " and ".join(f"{n}={getattr(self, n)!r}" for n in names)

    def read(self, record: Any, *, where: str) -> Record:
        """The record's text, or its example; errors name ``where`` (file and line or row)."""
        if self.kind == "text":
            return field_text(record, self.text_field, where=where)
        if self.kind == "prompt-completion":
            assert self.prompt_field is not None and self.completion_field is not None
            return PromptCompletion(
                field_text(record, self.prompt_field, where=where, option="prompt_field"),
                field_text(record, self.completion_field, where=where, option="completion_field"),
            )
        assert self.messages_field is not None
        value = field_value(record, self.messages_field, where=where, option="messages_field")
        return Chat(messages_of(value, where=where), self.chat_template)


def record_texts(record: Record) -> tuple[str, ...]:
    """Every text a record holds: itself, its prompt and completion, or its messages' contents."""
    if isinstance(record, str):
        return (record,)
    if isinstance(record, PromptCompletion):
        return (record.prompt, record.completion)
    return tuple(m.content for m in record.messages)


def messages_of(value: Any, *, where: str) -> tuple[Message, ...]:
    """A list of ``{"role", "content"}`` objects as messages (a JSON string is parsed first)."""
    if isinstance(value, str):  # a CSV cell, or a string column: JSON text
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{where}: messages_field holds text that is not JSON ({exc.msg}); it must be a "
                'list of {"role": ..., "content": ...} objects.'
            ) from None
    if not isinstance(value, list | tuple):
        raise ValueError(
            f"{where}: messages_field holds a {type(value).__name__}, not a list of "
            '{"role": ..., "content": ...} objects.'
        )
    messages = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ValueError(
                f"{where}: message {index} is a {type(item).__name__}, not an object with "
                '"role" and "content".'
            )
        for key in ("role", "content"):
            if not isinstance(item.get(key), str):
                have = "missing" if key not in item else f"a {type(item[key]).__name__}"
                raise ValueError(
                    f'{where}: message {index} has no text "{key}" ({have}); each message is '
                    '{"role": "user" | "assistant" | "system" ..., "content": "..."}.'
                )
        messages.append(Message(item["role"], item["content"]))
    if not messages:
        raise ValueError(f"{where}: messages_field holds an empty list; a chat needs a message.")
    return tuple(messages)
