"""A config value checked against the type its factory's parameter is annotated with.

``model.hidden=abc`` for ``hidden: int`` used to reach torch as
``empty(): argument 'size' ...``. The annotation is read as the text it is
written as (``from __future__ import annotations`` makes every annotation
text, and source-read signatures are text too) and only the plain types a
YAML value can have are judged: ``int``, ``float``, ``str``, ``bool``,
``None``, ``Path``, lists, mappings and unions or ``Optional`` of those. Any
other name (``torch.dtype``, a protocol) is trusted, so a factory is never
refused for an annotation this module does not understand.
"""

from __future__ import annotations

import ast
from typing import Any

from codex_ml.config.errors import ConfigError

#: annotation name -> the Python types of a YAML value that fit it.
_PLAIN: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (float, int),
    "str": (str,),
    "bool": (bool,),
    "None": (type(None),),
    "Path": (str,),
    "PathLike": (str,),
    "list": (list, tuple),
    "List": (list, tuple),
    "Sequence": (list, tuple, str),
    "tuple": (list, tuple),
    "Tuple": (list, tuple),
    "dict": (dict,),
    "Dict": (dict,),
    "Mapping": (dict,),
}


def check_kwarg_type(where: str, value: Any, annotation: Any) -> None:
    """Raise :class:`ConfigError` if ``value`` cannot be what ``annotation`` says."""
    if value is None or not isinstance(annotation, str):
        return  # None leaves the choice to the factory; a runtime type object is trusted
    try:
        expression = ast.parse(annotation, mode="eval").body
    except SyntaxError:
        return
    allowed = _allowed(expression)
    if allowed is None or _fits(value, allowed):
        return
    raise ConfigError(f"{where}: expected {annotation}, got {value!r}.", where=where)


def _fits(value: Any, allowed: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in allowed:
        return False  # True is an int to Python, not to a config
    return isinstance(value, allowed)


def _allowed(node: ast.expr) -> tuple[type, ...] | None:
    """The value types an annotation admits; None when it names something else (trusted)."""
    if isinstance(node, ast.Constant) and node.value is None:
        return (type(None),)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:  # a quoted forward reference
            return _allowed(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union([node.left, node.right])
    name = _name(node.value if isinstance(node, ast.Subscript) else node)
    if isinstance(node, ast.Subscript) and name in ("Optional", "Union"):
        members = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        union = _union(members)
        return union if union is None or name == "Union" else (*union, type(None))
    if isinstance(node, ast.Subscript) and name == "Literal":
        return None  # values are checked by the factory itself
    return _PLAIN.get(name) if name else None


def _union(members: list[ast.expr]) -> tuple[type, ...] | None:
    found: list[type] = []
    for member in members:
        allowed = _allowed(member)
        if allowed is None:
            return None
        found += allowed
    return tuple(found)


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):  # os.PathLike, typing.Optional, pathlib.Path
        return node.attr
    return None
