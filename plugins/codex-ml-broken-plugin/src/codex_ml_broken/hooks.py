"""A hook plugin whose import fails."""

raise RuntimeError("codex_ml_broken.hooks is broken on purpose")
