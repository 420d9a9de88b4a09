"""Test support: a pytest plugin with isolated registries, and tiny artefact builders."""
