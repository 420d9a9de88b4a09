"""Hand a trained run back to the ecosystem: a folder ``transformers`` loads on its own.

``export_run`` maps codex-ml's decoder onto a standard architecture (GPT-2 for
learned positions, GPT-NeoX for rotary ones), keeps a Hugging Face model its
own type, writes the tokenizer as Hugging Face files with the same ids, and
keeps the folder only if ``transformers`` generates from it what codex-ml does.
"""

from __future__ import annotations

from codex_ml.export.errors import ExportError, ExportMismatchError
from codex_ml.export.job import ExportResult, export_run
from codex_ml.export.source import parse_checkpoint_choice

__all__ = [
    "ExportError",
    "ExportMismatchError",
    "ExportResult",
    "export_run",
    "parse_checkpoint_choice",
]
