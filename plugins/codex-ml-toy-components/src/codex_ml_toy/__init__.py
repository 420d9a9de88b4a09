"""Example codex-ml components, each exposed by its own entry point."""
