"""An entry-point target whose import fails."""

import codex_ml_broken_missing_dependency  # noqa: F401  (does not exist, on purpose)


def build():
    return None
