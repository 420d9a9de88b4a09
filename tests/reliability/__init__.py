"""The reliability and security suite: one test per promise of ``docs/reliability.md``."""
