"""codex-ml: pluggable extension registries for an ML training stack.

The public surface lives in the subpackages: :mod:`codex_ml.registry` for the
the component registries (one per kind) and :mod:`codex_ml.plugins` for plugin authors.
Importing this package is free: nothing heavy is imported here.
"""

from __future__ import annotations

from codex_ml._version import __version__

__all__ = ["__version__"]
