"""Recognising torch tensors and numpy arrays without importing either.

Metrics must work in an install without torch, so they never import it to
find out whether an input is a tensor: if ``torch`` is not already in
``sys.modules``, nothing passed in can be a tensor.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


def array_library(*values: Any) -> ModuleType | None:
    """The (already imported) ``torch`` or ``numpy`` module that one of ``values`` is from."""
    torch = sys.modules.get("torch")
    if torch is not None and any(isinstance(v, torch.Tensor) for v in values):
        return torch
    numpy = sys.modules.get("numpy")
    if numpy is not None and any(isinstance(v, numpy.ndarray) for v in values):
        return numpy
    return None


def flatten(values: Any) -> list[Any]:
    """The scalars of a (nested) list, tuple, numpy array or tensor, in order."""
    if hasattr(values, "tolist"):  # tensors, arrays and numpy scalars
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        return [values]
    flat: list[Any] = []
    for value in values:
        flat.extend(flatten(value))
    return flat
