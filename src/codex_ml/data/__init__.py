"""The offline catalogue's data loaders: factories that return lists of text records."""

from codex_ml.data.lines import LineDecodeError, load_lines, load_tiny_corpus

__all__ = ["LineDecodeError", "load_lines", "load_tiny_corpus"]
