"""The preset a registry key implies: ``name: KEY`` and each keyword parameter with its default.

A registry key is a config choice whoever provides it. ``data=globex-lines``
with no preset of that name stands for this node (``name`` plus the factory's
keyword parameters and their defaults, a required one as ``???``), and
``codex-ml plugins show KIND KEY --preset`` prints the same node as a
commented YAML file to save and edit. Parameters are read from the factory's
source where it is still lazy (no plugin code runs, torch is not imported);
a default that is not a plain literal is read from the imported factory.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: A required parameter's value in a preset (OmegaConf's "missing").
REQUIRED = "???"


@dataclass(frozen=True)
class PresetParameter:
    """One keyword parameter: its default (or :data:`REQUIRED`), its type and doc, as text."""

    name: str
    default: Any
    type: str
    doc: str

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class FactoryPreset:
    """The preset of one registry key."""

    kind: str
    key: str
    doc: str
    parameters: tuple[PresetParameter, ...]

    def node(self) -> dict[str, Any]:
        """The config node: ``name`` and every parameter's default (``???`` when required)."""
        return {"name": self.key, **{p.name: p.default for p in self.parameters}}

    def yaml(self, group: str, *, alias: str | None = None) -> str:
        """The node as a commented YAML preset, ready to save as ``DIR/<group>/mine.yaml``.

        ``alias`` nests it under one name, as presets of list groups (``callbacks``,
        ``metrics``) are written: ``mine: {name: ..., ...}``.
        """
        import yaml

        use = f"{group}=[mine]" if alias else f"{group}=mine"
        about = f"# {self.kind} {self.key!r}" + (f": {self.doc}" if self.doc else "")
        head = [about, f"# Save as DIR/{group}/mine.yaml; use it: codex-ml train -cd DIR {use}"]
        lines = [f"name: {_scalar(yaml, self.key)}"]
        for p in self.parameters:
            value = REQUIRED if p.required else _scalar(yaml, p.default)
            notes = ", ".join(filter(None, (p.type, "required" if p.required else "", p.doc)))
            lines.append(f"{p.name}: {value}" + (f"  # {notes}" if notes else ""))
        if alias:
            lines = [f"{_scalar(yaml, alias)}:", *(f"  {line}" for line in lines)]
        return "\n".join([*head, *lines]) + "\n"


def _scalar(yaml: Any, value: Any) -> str:
    """One value in YAML flow style, on one line."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def factory_preset(
    kind: str, key: str, *, skip: Iterable[str] = (), fixed: Mapping[str, Any] | None = None
) -> FactoryPreset:
    """The preset of ``kind``/``key``; ``skip`` names parameters codex-ml sets itself, and
    ``fixed`` gives parameters a value other than their default (a model's ``vocab_size:
    null``, which codex-ml fills in from the tokenizer).

    Raises the registry's errors for an unknown or broken key.
    """
    from codex_ml.registry import get_registry

    registry = get_registry(kind)
    info = registry.describe(key)
    signature, doc = _static(info)
    if signature is None or _has_unread_default(signature):
        signature, doc = _imported(registry.get(key))
    docs = parameter_docs(doc or "")
    skipped = set(skip)
    parameters = tuple(
        PresetParameter(
            name,
            (fixed or {}).get(name, _default_value(p.default)),
            _type_text(p.annotation),
            docs.get(name, ""),
        )
        for name, p in (signature.parameters.items() if signature else ())
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and name not in skipped
        and name != "name"  # a fragment's `name` is the registry key, never a parameter
        and _representable(p.default)
    )
    return FactoryPreset(registry.kind, info.key, _first_line(doc or info.doc or ""), parameters)


def _static(info: Any) -> tuple[inspect.Signature | None, str | None]:
    """The signature and docstring from source, for a lazy entry whose target can be read."""
    import ast

    from codex_ml.config.signatures import static_signature
    from codex_ml.registry.provenance import definition_of

    if info.status != "lazy" or not info.target:
        return None, None
    signature = static_signature(info.target)
    _, node = definition_of(info.target)
    doc = None
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        doc = ast.get_docstring(node)
    return signature, doc


def _imported(factory: Any) -> tuple[inspect.Signature | None, str | None]:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        signature = None
    return signature, inspect.getdoc(factory)


def _has_unread_default(signature: inspect.Signature) -> bool:
    from codex_ml.config.signatures import HAS_DEFAULT

    return any(p.default is HAS_DEFAULT for p in signature.parameters.values())


def _default_value(default: Any) -> Any:
    """The default as YAML holds it: required as ``???``, tuples as lists."""
    if default is inspect.Parameter.empty:
        return REQUIRED
    if isinstance(default, (tuple, list)):
        return [_default_value(item) for item in default]
    return default


#: Defaults a YAML preset can hold; any other (an object, a function) is left to the factory.
_PLAIN = (str, int, float, bool, type(None), list, tuple, dict)


def _representable(default: Any) -> bool:
    if default is inspect.Parameter.empty:
        return True
    if isinstance(default, (list, tuple)):
        return all(_representable(item) for item in default)
    if isinstance(default, dict):
        return all(isinstance(k, str) and _representable(v) for k, v in default.items())
    return isinstance(default, _PLAIN)


def _type_text(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


#: reST markup in a docstring (``x``, :class:`~a.b.C`), shown as plain text in a preset.
_REST_ROLE = re.compile(r":[a-z]+:`~?(?:[\w.]*\.)?([^`]+)`")


def _first_line(doc: str) -> str:
    line = next((line.strip() for line in doc.strip().splitlines() if line.strip()), "")
    return _REST_ROLE.sub(r"\1", line).replace("``", "")


#: ``name: text``, ``name (type): text`` (Google, numpy) or ``:param name: text`` (reST).
_PARAM_LINE = re.compile(
    r"^\s*(?::param\s+(?:[\w\[\], .|]+\s+)?(?P<rest_name>\w+):|(?P<name>\w+)\s*(?:\([^)]*\))?\s*:)"
    r"\s*(?P<text>.*)$"
)
_SECTIONS = ("args:", "arguments:", "parameters", "keyword arguments:", "params:")


def parameter_docs(doc: str) -> dict[str, str]:
    """Each parameter's first line of documentation, from the usual docstring styles."""
    found: dict[str, str] = {}
    in_section = False
    for line in doc.splitlines():
        lowered = line.strip().lower()
        if lowered.startswith(_SECTIONS):
            in_section = True
            continue
        match = _PARAM_LINE.match(line)
        if match and match["rest_name"]:
            found.setdefault(match["rest_name"], match["text"].strip())
        elif match and in_section and match["name"]:
            found.setdefault(match["name"], match["text"].strip())
        elif in_section and lowered and not line.startswith((" ", "\t")):
            in_section = lowered.startswith("-")  # numpy's underline keeps the section open
    return {name: text for name, text in found.items() if text}
