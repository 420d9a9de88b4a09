"""The registry's errors. Each carries the registry kind and key it is about."""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported on the listing path
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "RegistryConflictError",
    "RegistryError",
    "RegistryLoadError",
    "RegistryMissingExtraError",
    "RegistryNotFoundError",
    "RegistryUnavailableError",
]


class RegistryError(Exception):
    """Base class of every registry error."""

    message: str
    kind: str | None
    key: str | None

    def __init__(self, message: str, *, kind: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.key = key

    def __str__(self) -> str:  # KeyError subclasses would otherwise print repr(message)
        return self.message


class RegistryNotFoundError(RegistryError, KeyError):
    """No component is registered under the key. Also a :class:`KeyError`."""

    suggestions: list[str]

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        key: str | None = None,
        suggestions: Sequence[str] = (),
    ) -> None:
        super().__init__(message, kind=kind, key=key)
        self.suggestions = list(suggestions)


class RegistryConflictError(RegistryError):
    """Two providers claim one key; ``providers`` describes each of them."""

    providers: list[str]

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        key: str | None = None,
        providers: Sequence[str] = (),
    ) -> None:
        super().__init__(message, kind=kind, key=key)
        self.providers = list(providers)


class RegistryLoadError(RegistryError):
    """A plugin or entry point failed to load; the original exception is ``__cause__``."""


class RegistryUnavailableError(RegistryLoadError, RegistryNotFoundError):
    """The key is missing, and a plugin that might have provided it failed to load.

    Both a :class:`RegistryLoadError` (the cause is the plugin's exception) and
    a :class:`RegistryNotFoundError`, so either ``except`` clause catches it.
    """


class RegistryMissingExtraError(RegistryLoadError):
    """A built-in entry needs a package that one of codex-ml's extras installs.

    Not a broken entry: an install step. ``module`` is the missing package and
    ``extra`` the extra that brings it (``pip install "codex-ml[<extra>]"``).
    """

    module: str
    extra: str

    def __init__(self, message: str, *, kind: str, key: str, module: str, extra: str) -> None:
        super().__init__(message, kind=kind, key=key)
        self.module = module
        self.extra = extra
