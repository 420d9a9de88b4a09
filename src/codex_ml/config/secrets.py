"""Secrets read from the environment are used, never written down.

A preset may pass a credential to a component with ``${oc.env:HF_TOKEN}``.
The component needs the value, but ``config.yaml`` and ``summary.json`` are
files people share; so every value that came from a variable whose name looks
secret is replaced there by a marker naming the variable.

Secrets are matched by value, after resolution, not by where they sit in the
config: a value reaches a file through whatever resolver or nesting carried it
(``${oc.decode:${oc.env:PIN_SECRET}}`` turns it into a number,
``${oc.env:${oc.env:WHICH}}`` names the variable only at run time, a plugin's
resolver may read the environment itself). See :func:`secret_values` for which
values count.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

#: Variable names that hold a credential, by the common conventions.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
#: ``${oc.env:NAME}`` or ``${oc.env:NAME,default}``, with optional quotes and spaces.
_ENV_REFERENCE = re.compile(r"oc\.env:\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)")
#: Shorter values are only redacted where they are the whole string (a substring match of
#: a 2-character value would mangle unrelated text).
_MIN_SUBSTRING = 6
#: A secret-looking variable the config does not name counts only if its value could be a
#: credential: at least this long and not a switch (``TOKENIZERS_PARALLELISM=false``).
_MIN_UNNAMED = 4
_SWITCH_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null"})


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name says that it holds a credential."""
    return bool(SECRET_NAME.search(name))


def secret_values(unresolved: Any) -> dict[str, str]:
    """value -> variable name, for every value of a secret-looking variable that may reach a file.

    Two kinds of variable with a secret-looking name (:func:`is_secret_name`) count:

    - those the config reads with ``oc.env`` by name, whatever their value;
    - every other one set in the environment, because a nested interpolation or
      a resolver may read it without naming it, when its value could be a
      credential (at least 4 characters, not a word like ``false``).

    ``unresolved`` is the config before interpolation (plain containers).
    """
    found: dict[str, str] = {}
    for name, value in os.environ.items():
        if value and is_secret_name(name) and _could_be_credential(value):
            found[value] = name
    for text in _strings(unresolved):
        for name in _ENV_REFERENCE.findall(text):
            value = os.environ.get(name)
            if value and is_secret_name(name):
                found[value] = name
    return found


def redact(data: Any, secrets: Mapping[str, str]) -> Any:
    """A copy of ``data`` (plain containers) with every secret value replaced by a marker.

    A string is redacted where it is a secret or (for secrets of 6 characters or
    more) where it holds one; a number where it equals a secret read as a number
    (``123456`` resolved from ``PIN_SECRET=123456``).
    """
    if not secrets:
        return data
    if isinstance(data, Mapping):
        return {redact(key, secrets): redact(value, secrets) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(redact(value, secrets) for value in data)
    if isinstance(data, str):
        for value, name in secrets.items():
            if data == value or (len(value) >= _MIN_SUBSTRING and value in data):
                data = data.replace(value, _marker(name))
        return data
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        for value, name in secrets.items():
            if _as_number(value) == data:
                return _marker(name)
    return data


def _marker(name: str) -> str:
    return f"<redacted: ${name}>"


def _could_be_credential(value: str) -> bool:
    return len(value) >= _MIN_UNNAMED and value.strip().lower() not in _SWITCH_WORDS


def _as_number(value: str) -> int | float | None:
    """``value`` as the number a resolver (``oc.decode``, YAML) may have made of it, if any."""
    text = value.strip()
    for parse in (int, lambda t: int(t, 0), float):
        try:
            return parse(text)
        except ValueError:
            continue
    return None


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, Mapping):
        return [s for key, value in node.items() for s in (*_strings(key), *_strings(value))]
    if isinstance(node, (list, tuple)):
        return [s for value in node for s in _strings(value)]
    return []
