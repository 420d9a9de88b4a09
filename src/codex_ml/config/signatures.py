"""A factory's parameters, read from its source where it has not been imported yet.

Checking ``model.n_layr=2`` against ``build_decoder_only`` used to import the
model's module, and with it torch: three seconds before a one-line typo error.
A lazy entry's target (``module:function`` or ``module:Class``) is found
without importing it, as ``codex-ml plugins show`` does, and its signature
read from the syntax tree: names, kinds, whether a default exists, and each
annotation as the text it is written as. Anything unusual (a decorator, a
class without its own ``__init__``) returns ``None``, and the caller imports.
"""

from __future__ import annotations

import ast
import inspect

#: The default of a parameter read from source that is not a plain literal: present, but
#: never evaluated (a literal default, ``3`` or ``"x"`` or ``(0.9, 0.95)``, is kept as its value).
HAS_DEFAULT = object()


def static_signature(target: str) -> inspect.Signature | None:
    """The signature of ``module:attr`` read from its source, or None when that is not sure."""
    from codex_ml.registry.provenance import definition_of

    file, node = definition_of(target)
    if isinstance(node, ast.ClassDef):
        if node.bases and not _plain_mixins(node, file):
            return None  # inherited or generated some other way: import and ask
        return _class_signature(node)
    if isinstance(node, ast.FunctionDef) and not node.decorator_list:
        return _signature(node.args, skip_first=False)
    return None


def _class_signature(node: ast.ClassDef) -> inspect.Signature | None:
    """``__init__``'s parameters, or a plain dataclass's fields; None for anything else."""
    from codex_ml.registry.provenance import find_definition

    decorators = {_decorator_name(d): d for d in node.decorator_list}
    if not set(decorators) <= {"final", "dataclass"}:
        return None  # generated some other way: import and ask
    init = find_definition(node, ["__init__"])
    if isinstance(init, ast.FunctionDef) and not init.decorator_list:
        return _signature(init.args, skip_first=True)
    if "dataclass" not in decorators:
        return None
    options = decorators["dataclass"]
    keywords = {k.arg: k.value for k in getattr(options, "keywords", [])}
    if "init" in keywords:
        return None
    only = keywords.get("kw_only")
    how = (
        inspect.Parameter.KEYWORD_ONLY
        if isinstance(only, ast.Constant) and only.value is True
        else inspect.Parameter.POSITIONAL_OR_KEYWORD
    )
    fields = [
        inspect.Parameter(
            statement.target.id,
            how,
            default=inspect.Parameter.empty
            if statement.value is None
            else _literal(statement.value),
            annotation=ast.unparse(statement.annotation),
        )
        for statement in node.body
        if isinstance(statement, ast.AnnAssign)
        and isinstance(statement.target, ast.Name)
        and "ClassVar" not in ast.unparse(statement.annotation)
    ]
    return inspect.Signature(fields)


def _plain_mixins(node: ast.ClassDef, file: str | None) -> bool:
    """Whether every base of ``node`` is a plain class (no fields, no decorator, no base, no
    ``__init__``) imported by name with ``from M import Base``: one that adds methods only,
    so the class's own fields or ``__init__`` are its whole signature."""
    from codex_ml.registry.provenance import definition_of

    if file is None or node.keywords:
        return False
    try:
        with open(file, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=file)
    except (OSError, SyntaxError, ValueError):
        return False
    imported = {
        alias.asname or alias.name: f"{statement.module}:{alias.name}"
        for statement in tree.body
        if isinstance(statement, ast.ImportFrom) and statement.module and not statement.level
        for alias in statement.names
    }
    for base in node.bases:
        target = imported.get(base.id) if isinstance(base, ast.Name) else None
        _, found = definition_of(target) if target else (None, None)
        if not (
            isinstance(found, ast.ClassDef)
            and not found.bases
            and not found.decorator_list
            and not any(isinstance(s, ast.AnnAssign) for s in found.body)
            and not any(isinstance(s, ast.FunctionDef) and s.name == "__init__" for s in found.body)
        ):
            return False
    return True


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else "?"


def _signature(args: ast.arguments, *, skip_first: bool) -> inspect.Signature:
    kind = inspect.Parameter
    positional = [(a, kind.POSITIONAL_ONLY) for a in args.posonlyargs]
    positional += [(a, kind.POSITIONAL_OR_KEYWORD) for a in args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = [
        _parameter(arg, how, default)
        for (arg, how), default in zip(positional, defaults, strict=True)
    ]
    if skip_first and params:
        params = params[1:]
    if args.vararg:
        params.append(_parameter(args.vararg, kind.VAR_POSITIONAL, None))
    params += [
        _parameter(arg, kind.KEYWORD_ONLY, default)
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    if args.kwarg:
        params.append(_parameter(args.kwarg, kind.VAR_KEYWORD, None))
    return inspect.Signature(params)


def _parameter(
    arg: ast.arg, kind: inspect._ParameterKind, default: ast.expr | None
) -> inspect.Parameter:
    return inspect.Parameter(
        arg.arg,
        kind,
        default=inspect.Parameter.empty if default is None else _literal(default),
        annotation=ast.unparse(arg.annotation) if arg.annotation else inspect.Parameter.empty,
    )


def _literal(node: ast.expr) -> object:
    """A default's value when it is a plain literal, else :data:`HAS_DEFAULT`."""
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return HAS_DEFAULT
