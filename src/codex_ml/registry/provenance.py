"""Where a factory comes from, found without importing it.

Describing a lazy entry must not run third-party code, so the file of a
``module:attr`` target is located with the import system's path finder (which
never executes a module) and its line and docstring are read with ``ast``.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
from dataclasses import dataclass
from importlib.machinery import PathFinder
from typing import Any


@dataclass(frozen=True, slots=True)
class Location:
    file: str | None = None
    line: int | None = None
    doc: str | None = None


def first_line(doc: str | None) -> str | None:
    if not doc:
        return None
    stripped = inspect.cleandoc(doc).strip()
    return stripped.splitlines()[0] if stripped else None


def target_of(obj: Any) -> str:
    """``module:qualname`` of an object (its class's for an instance; a LazyFactory's target)."""
    if getattr(type(obj), "__codex_ml_lazy__", False):
        return obj.target
    if not hasattr(obj, "__qualname__"):
        obj = type(obj)
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


def locate_object(obj: Any) -> Location:
    """File, first line and docstring of an imported object."""
    target = obj if hasattr(obj, "__qualname__") else type(obj)
    target = inspect.unwrap(target) if callable(target) else target
    try:
        file = inspect.getsourcefile(target) or inspect.getfile(target)
    except TypeError:
        file = None
    try:
        line = inspect.getsourcelines(target)[1]
    except (OSError, TypeError):
        line = None
    return Location(file, line, first_line(inspect.getdoc(obj)))


def module_file(module: str) -> str | None:
    # The top-level name goes through every finder (editable installs use their
    # own); find_spec never executes a top-level module. Submodules are found on
    # their package's path by PathFinder, which does not import the package.
    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return None
    for depth in range(2, len(parts) + 1):
        if spec is None or spec.submodule_search_locations is None:
            return None
        spec = PathFinder.find_spec(".".join(parts[:depth]), spec.submodule_search_locations)
    return spec.origin if spec is not None and spec.has_location else None


def locate_target(target: str) -> Location:
    """File, line and docstring of ``module:attr`` without importing the module."""
    file, node = definition_of(target)
    if node is None:
        return Location(file)
    return Location(file, getattr(node, "lineno", None), first_line(ast.get_docstring(node)))


def definition_of(target: str) -> tuple[str | None, ast.AST | None]:
    """(file, syntax-tree node) of the function or class ``module:attr`` names, not imported."""
    module, _, attr = target.partition(":")
    file = module_file(module.strip())
    if file is None or not file.endswith(".py"):
        return file, None
    try:
        with open(file, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), filename=file)
    except (OSError, SyntaxError, ValueError):
        return file, None
    return file, find_definition(tree, attr.strip().split("."))


def find_definition(node: ast.AST | None, path: list[str]) -> ast.AST | None:
    """The function or class at ``path`` (``["Class", "method"]``) under ``node``."""
    for name in path:
        node = next(
            (
                child
                for child in getattr(node, "body", [])
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and child.name == name
            ),
            None,
        )
    return node


def distribution_of(obj: Any) -> str | None:
    """The installed distribution whose top-level package defines ``obj``, if any.

    Scans installed metadata, so it is only used on error paths.
    """
    from importlib.metadata import packages_distributions, version

    module = getattr(obj, "__module__", None) or getattr(type(obj), "__module__", "")
    names = packages_distributions().get(module.split(".")[0], [])
    if not names:
        return None
    return f"{names[0]} {version(names[0])}"
