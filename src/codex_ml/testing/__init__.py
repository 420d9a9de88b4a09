"""Test support: a pytest plugin with isolated registries, tiny artefact builders, and
:func:`check_component`, the contract check for plugin authors."""

from codex_ml.testing.contracts import ContractReport, NeedsArguments, check_component

__all__ = ["ContractReport", "NeedsArguments", "check_component"]
