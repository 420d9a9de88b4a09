"""The error a bad config raises: one paragraph, naming the config path at fault."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config that cannot be run as written; ``where`` is its dotted path (``model.n_layer``)."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.where = where
