"""The OmegaConf resolvers the presets use for paths (``${codex_ml.project_root:}``)."""

from __future__ import annotations


def register_resolvers() -> None:
    """Register codex-ml's resolvers once per process (idempotent)."""
    from omegaconf import OmegaConf

    from codex_ml.resources import offline_data_dir, project_root

    resolvers = {
        "codex_ml.project_root": lambda: str(project_root()),
        "codex_ml.data_dir": lambda: str(offline_data_dir()),
    }
    for name, resolver in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
