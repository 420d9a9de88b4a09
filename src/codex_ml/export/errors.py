"""What can go wrong in an export: the user's to fix, or codex-ml's to answer for."""

from __future__ import annotations


class ExportError(ValueError):
    """Bad input to an export (a non-empty ``--out``, a checkpoint that is not there, a model
    no standard architecture can hold): the command line reports it and exits 2."""


class ExportMismatchError(RuntimeError):
    """The written folder does not generate what codex-ml generates: it was not kept."""
