"""Secrets read from the environment are used, never written down.

A preset may pass a credential to a component with ``${oc.env:HF_TOKEN}``.
The component needs the value, but ``config.yaml`` and ``summary.json`` are
files people share; so every value that came from a variable whose name looks
secret is replaced there by a marker naming the variable.
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


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name says that it holds a credential."""
    return bool(SECRET_NAME.search(name))


def secret_values(unresolved: Any) -> dict[str, str]:
    """value -> variable name, for each secret-looking variable the config reads with oc.env."""
    found: dict[str, str] = {}
    for text in _strings(unresolved):
        for name in _ENV_REFERENCE.findall(text):
            value = os.environ.get(name)
            if value and is_secret_name(name):
                found[value] = name
    return found


def redact(data: Any, secrets: Mapping[str, str]) -> Any:
    """A copy of ``data`` (plain containers) with every secret value replaced by a marker."""
    if not secrets:
        return data
    if isinstance(data, Mapping):
        return {key: redact(value, secrets) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(redact(value, secrets) for value in data)
    if isinstance(data, str):
        for value, name in secrets.items():
            if data == value or (len(value) >= _MIN_SUBSTRING and value in data):
                data = data.replace(value, f"<redacted: ${name}>")
    return data


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, Mapping):
        return [s for key, value in node.items() for s in (*_strings(key), *_strings(value))]
    if isinstance(node, (list, tuple)):
        return [s for value in node for s in _strings(value)]
    return []
