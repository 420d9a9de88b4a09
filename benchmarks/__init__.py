"""Reproducible benchmarks of codex-ml against the libraries it competes with.

Run everything and rewrite the results part of ``docs/benchmarks.md``::

    python -m benchmarks.run            # ~15 minutes on 2 CPU cores
    python -m benchmarks.run --quick    # seconds; what CI runs (tests/test_benchmarks_smoke.py)

Each section is one module (``cold_start``, ``discovery_scale``,
``hot_lookup``, ``training``); code that must run in a fresh interpreter lives
under ``benchmarks/probes/``. Every figure is a median of repeated runs and is
compared with a baseline measured in the same run.
"""
