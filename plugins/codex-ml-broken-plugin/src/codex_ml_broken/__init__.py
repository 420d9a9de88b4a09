"""Deliberately broken plugin modules for the codex-ml test suite."""
