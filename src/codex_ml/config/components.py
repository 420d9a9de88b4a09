"""A config fragment as a component spec: registry key + kwargs, checked before building."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from codex_ml.config.errors import ConfigError
from codex_ml.config.kwarg_types import check_kwarg_type
from codex_ml.config.signatures import static_signature


@dataclass(frozen=True)
class ComponentSpec:
    """What to build: ``kind`` and key ``name``, with ``kwargs`` from config path ``where``."""

    kind: str
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    where: str = ""


def spec_from(
    node: Mapping[str, Any], kind: str, where: str, *, reserved: tuple[str, ...] = ()
) -> ComponentSpec:
    """Split a resolved fragment into its key and kwargs; ``reserved`` keys are codex-ml's own."""
    if not isinstance(node, Mapping) or not isinstance(node.get("name"), str) or not node["name"]:
        raise ConfigError(
            f"{where}: a component fragment needs `name: <registry key>` (got {node!r}). "
            f"See `codex-ml plugins list {kind}` for the keys.",
            where=where,
        )
    kwargs = {k: v for k, v in node.items() if k != "name" and k not in reserved}
    return ComponentSpec(kind, node["name"], kwargs, where)


def check_spec(
    spec: ComponentSpec,
    *,
    provided: tuple[str, ...] = (),
    internal: Mapping[str, str] | tuple[str, ...] = (),
    load: bool = True,
) -> Any:
    """The factory for ``spec``, after checking every kwarg against its signature.

    ``provided`` names the arguments codex-ml passes itself where the config
    leaves them unset (``vocab_size`` say), so they count as given;
    ``internal`` names the ones codex-ml always sets (a trainer's
    ``output_dir``), which a config may not; as a mapping, each name's value
    says where codex-ml takes it from (``"hydra.run.dir"``), for the message.
    With ``load=False`` a lazy entry is checked from its source without
    importing it, and None is returned.
    """
    signature, factory = _signature_of(spec, load)
    if signature is None:
        return factory  # no signature to check against (a builtin, say)
    parameters = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return factory
    accepted = [
        name
        for name, p in parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and name not in internal
    ]
    sources = dict(internal) if isinstance(internal, Mapping) else dict.fromkeys(internal, "")
    for name, value in spec.kwargs.items():
        if name in sources:
            source = f" from {sources[name]}" if sources[name] else ""
            raise ConfigError(
                f"{spec.where}.{name}: codex-ml sets {name!r} itself{source}, so a config may "
                f"not; remove it.",
                where=f"{spec.where}.{name}",
            )
        if name not in accepted:
            close = difflib.get_close_matches(name, [*accepted, *sources], n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            if close and sources.get(close[0]):
                hint += f" codex-ml sets it from {sources[close[0]]}."
            raise ConfigError(
                f"{spec.where}.{name}: {spec.kind} {spec.name!r} has no parameter {name!r}.{hint} "
                f"It accepts: {', '.join(accepted) or '(nothing)'}.",
                where=f"{spec.where}.{name}",
            )
        check_kwarg_type(f"{spec.where}.{name}", value, parameters[name].annotation)
    missing = [
        name
        for name in accepted
        if parameters[name].default is inspect.Parameter.empty
        and name not in spec.kwargs
        and name not in provided
    ]
    if missing:
        raise ConfigError(
            f"{spec.where}: {spec.kind} {spec.name!r} needs {', '.join(missing)}; set "
            + " ".join(f"{spec.where}.{name}=..." for name in missing)
            + ".",
            where=spec.where,
        )
    return factory


def accepted_parameters(kind: str, key: str) -> list[str] | None:
    """The keyword parameters a key's factory takes (read from source where it can be); None
    when it takes ``**kwargs`` or has no signature to read."""
    signature, _ = _signature_of(ComponentSpec(kind, key, {}, kind), load=False)
    if signature is None:
        return None
    parameters = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in keyword]


def _signature_of(spec: ComponentSpec, load: bool) -> tuple[inspect.Signature | None, Any]:
    """(signature, factory); from source alone for a lazy entry when ``load`` is False."""
    from codex_ml.registry import RegistryError, get_registry

    registry = get_registry(spec.kind)
    try:
        if not load:
            info = registry.describe(spec.name)
            if info.status == "lazy" and info.target:
                signature = static_signature(info.target)
                if signature is not None:
                    return signature, None
        factory = registry.get(spec.name)
    except RegistryError as exc:
        raise ConfigError(f"{spec.where}.name: {exc}", where=f"{spec.where}.name") from exc
    try:
        return inspect.signature(factory), factory
    except (TypeError, ValueError):
        return None, factory


def build_component(spec: ComponentSpec, factory: Any, **extra: Any) -> Any:
    """Call the factory with the spec's kwargs (and ``extra`` where the config left them unset)."""
    kwargs = dict(spec.kwargs)
    for name, value in extra.items():
        if kwargs.get(name) is None:
            kwargs[name] = value
    return factory(**kwargs)
