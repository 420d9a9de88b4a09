"""Types of the registry API, for type checkers and for authors of sources.

Kept apart from :mod:`codex_ml.registry.base` and the facade, which are on the
path of every listing: they import this module only under ``TYPE_CHECKING``,
so listing never imports :mod:`typing`.

- :class:`Source`: what a registry source offers.
- :class:`Register`: ``register_<kind>``, as a decorator or a direct call; the
  factory comes back with its own type, so a decorated function stays typed.
- :class:`Get`: ``get_<kind>``, which returns the kind's protocol
  (:mod:`codex_ml.protocols`); call the factory itself for its exact type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

if TYPE_CHECKING:
    from codex_ml.registry.providers import Provider, SourceProblem

__all__ = ["Factory", "Get", "ListKeys", "Register", "Source"]

#: Any callable can be a factory: a function, a class, a ``functools.partial``.
Factory = TypeVar("Factory", bound=Callable[..., Any])
Component = TypeVar("Component", covariant=True)

#: ``list_<kind>s()``: every key, sorted, importing nothing.
ListKeys = Callable[[], list[str]]


class Source(Protocol):
    """Offers candidate providers for a kind, and forgets them on ``refresh``."""

    def provide(self, kind: str) -> tuple[list[Provider], list[SourceProblem]]:
        """The providers of ``kind``, and faults that belong to no single key."""
        ...

    def refresh(self) -> None:
        """Forget what was provided, so that the next ``provide`` looks again."""
        ...


class Register(Protocol):
    """``register_<kind>(name, obj=None, *, override=False)``.

    ``@register_metric("acme")`` returns the decorated factory unchanged (type
    and all); ``register_metric("acme", build)`` registers and returns ``build``.
    """

    @overload
    def __call__(
        self, name: str, obj: None = None, *, override: bool = False
    ) -> Callable[[Factory], Factory]: ...

    @overload
    def __call__(self, name: str, obj: Factory, *, override: bool = False) -> Factory: ...


class Get(Protocol[Component]):
    """``get_<kind>(name, config=None, /, **kwargs)``: build the component under ``name``.

    ``config`` is a mapping of the factory's keyword arguments (the original
    codex-ml's ``get_model(name, cfg)``); ``kwargs`` are merged over it.
    """

    def __call__(
        self, name: str, config: Mapping[str, Any] | None = None, /, **kwargs: Any
    ) -> Component:
        """Call the factory registered under ``name`` and return what it built."""
        ...
