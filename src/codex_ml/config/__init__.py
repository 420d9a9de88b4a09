"""From a composed config to checked component specs.

A config fragment names a registry key (``name:``) and that factory's kwargs.
Nothing in a config is ever imported: instantiation keys such as ``_target_``
are rejected, and kwargs are checked against the factory's signature before
anything is built.
"""

from codex_ml.config.components import ComponentSpec, build_component, check_spec, spec_from
from codex_ml.config.errors import ConfigError
from codex_ml.config.safety import reject_instantiation_keys

__all__ = [
    "ComponentSpec",
    "ConfigError",
    "build_component",
    "check_spec",
    "reject_instantiation_keys",
    "spec_from",
]
