"""An instruction example as text parts, each marked with whether the model learns to write it.

A :class:`~codex_ml.data.examples.PromptCompletion` is two parts: the prompt
(no loss) and the completion (loss). A :class:`~codex_ml.data.examples.Chat`
is rendered by a chat template into parts in which the assistant's turns carry
the loss and everything else (system and user turns, the template's headers)
does not:

- the tokenizer's own template (``apply_chat_template`` of a Hugging Face
  tokenizer), the default. Which text is the assistant's is found by rendering
  the conversation as it grows: the conversation up to an assistant turn with
  the generation prompt (what a model is given at inference), then with that
  turn. Each rendering must begin with the one before, which holds for
  templates that render each turn on its own; one that rewrites earlier turns
  is refused (:class:`ChatTemplateError`);
- the plain template, chosen with ``chat_template="plain"`` (for a tokenizer
  without a template, such as the byte tokenizer)::

      ### User
      What is 2 + 2?

      ### Assistant
      4

  Each message is ``### {Role}\\n{content}\\n\\n`` with the role capitalised
  (``system`` -> ``System``); an assistant message's ``{content}\\n\\n``
  carries the loss, its header does not (``### Assistant\\n`` is the
  generation prompt).

A tokenizer without a template, and no plain template chosen, is a
:class:`ChatTemplateError` (exit 2), as is a template that fails on a chat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from codex_ml.config import ConfigError
from codex_ml.data.examples import Chat, Message, PromptCompletion

#: A text part and whether it carries the loss.
Part = tuple[str, bool]

#: The plain template, as documented above.
PLAIN_TEMPLATE = "### {role}\n{content}\n\n"
PLAIN_GENERATION_PROMPT = "### Assistant\n"
ASSISTANT = "assistant"


class ChatTemplateError(ConfigError):
    """A chat cannot be rendered: no template to render it with, or the template failed."""


def example_parts(example: PromptCompletion | Chat, tokenizer: Any) -> list[Part]:
    """``example`` as text parts, each with whether it carries the loss."""
    if isinstance(example, PromptCompletion):
        return [(example.prompt, False), (example.completion, True)]
    if example.template == "plain":
        return plain_parts(example.messages)
    return template_parts(chat_renderer(tokenizer), example)


def plain_parts(messages: Sequence[Message]) -> list[Part]:
    """The plain template's parts (see the module docstring)."""
    parts: list[Part] = []
    for message in messages:
        if message.role == ASSISTANT:
            parts += [(PLAIN_GENERATION_PROMPT, False), (f"{message.content}\n\n", True)]
        else:
            turn = PLAIN_TEMPLATE.format(role=_title(message.role), content=message.content)
            parts.append((turn, False))
    return parts


def plain_text(messages: Sequence[Message]) -> str:
    """The conversation rendered by the plain template."""
    return "".join(text for text, _ in plain_parts(messages))


def record_text(record: str | PromptCompletion | Chat) -> str:
    """A record as one text (what the text metrics read): itself, the prompt then the
    completion, or the conversation in the plain template."""
    if isinstance(record, str):
        return record
    if isinstance(record, PromptCompletion):
        return record.prompt + record.completion
    return plain_text(record.messages)


def _title(role: str) -> str:
    return role[:1].upper() + role[1:]


def has_chat_template(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` (or the Hugging Face tokenizer it wraps) has a chat template."""
    hf = getattr(tokenizer, "hf_tokenizer", tokenizer)
    return bool(getattr(hf, "chat_template", None)) and callable(
        getattr(hf, "apply_chat_template", None)
    )


def chat_template_identity(tokenizer: Any) -> dict[str, Any] | None:
    """What the tokenizer's chat template renders with: the template and the special tokens.

    Neither is in a tokenizer's vocabulary file, so a token store of chats
    records them in its fingerprint; None when there is no template.
    """
    if not has_chat_template(tokenizer):
        return None
    hf = getattr(tokenizer, "hf_tokenizer", tokenizer)
    special = getattr(hf, "special_tokens_map", {}) or {}
    return {
        "template": str(hf.chat_template),
        "special_tokens": {k: str(v) for k, v in special.items()},
    }


class ChatRenderer:
    """Renders messages with a tokenizer's chat template, as text (never token ids)."""

    def __init__(self, tokenizer: Any) -> None:
        self.hf = getattr(tokenizer, "hf_tokenizer", tokenizer)
        self.name = getattr(self.hf, "name_or_path", None) or type(tokenizer).__name__

    def __call__(self, messages: list[dict[str, str]], *, generation_prompt: bool) -> str:
        try:
            text = self.hf.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=generation_prompt
            )
        except Exception as exc:  # jinja2's TemplateError, or a raise_exception() in the template
            roles = ", ".join(m["role"] for m in messages) or "none"
            raise ChatTemplateError(
                f"data.messages_field: the chat template of tokenizer {self.name!r} failed on a "
                f"chat (roles: {roles}): {' '.join(str(exc).split())}. Fix those records (many "
                "templates want user and assistant turns to alternate, a system turn first), "
                "or render with codex-ml's plain template: data.chat_template=plain.",
                where="data.chat_template",
            ) from None
        if not isinstance(text, str):
            raise ChatTemplateError(
                f"data.messages_field: the chat template of tokenizer {self.name!r} gave a "
                f"{type(text).__name__}, not text.",
                where="data.chat_template",
            )
        return text


def chat_renderer(tokenizer: Any) -> ChatRenderer:
    """The tokenizer's template renderer, or the error that it has none."""
    if not has_chat_template(tokenizer):
        kind = type(tokenizer)
        raise ChatTemplateError(
            f"data.messages_field: the tokenizer ({kind.__module__}.{kind.__qualname__}) has no "
            "chat template, so codex-ml cannot tell how its model expects a conversation to be "
            "written. Choose codex-ml's plain template with data.chat_template=plain ('### User', "
            "'### Assistant' headers; see docs/guides/fine_tuning.md), or use a tokenizer that "
            "has a chat template (tokenizer=offline/hf tokenizer.name_or_path=DIR).",
            where="data.chat_template",
        )
    return ChatRenderer(tokenizer)


def template_parts(render: ChatRenderer, chat: Chat) -> list[Part]:
    """A chat's parts under a tokenizer's template, found by rendering it as it grows."""
    messages = chat.as_dicts()
    parts: list[Part] = []
    done = ""
    for index, message in enumerate(messages):
        if message["role"] != ASSISTANT:
            continue
        asked = render(messages[:index], generation_prompt=True)
        answered = render(messages[: index + 1], generation_prompt=False)
        parts.append((_after(done, asked, render.name), False))
        parts.append((_after(asked, answered, render.name), True))
        done = answered
    if len(messages) and messages[-1]["role"] != ASSISTANT:
        parts.append((_after(done, render(messages, generation_prompt=False), render.name), False))
    return [part for part in parts if part[0]]


def _after(before: str, text: str, name: str) -> str:
    """What ``text`` adds to ``before``, which it must begin with."""
    if not text.startswith(before):
        raise ChatTemplateError(
            f"data.messages_field: the chat template of tokenizer {name!r} does not render a "
            "conversation as it grows (the rendering of its first turns is not the start of the "
            "rendering with one turn more; templates that rewrite earlier turns do this), so "
            "codex-ml cannot tell which tokens are the assistant's. Render with codex-ml's plain "
            "template (data.chat_template=plain), or set the tokenizer's chat_template to one "
            "that renders each turn on its own.",
            where="data.chat_template",
        )
    return text[len(before) :]
