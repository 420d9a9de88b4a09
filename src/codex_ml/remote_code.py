"""A Hugging Face folder that asks to run its own Python code is refused before loading.

``auto_map`` in a folder's ``config.json`` or ``tokenizer_config.json`` points
transformers at modules shipped inside the folder (``configuration_*.py``,
``modeling_*.py``, ``tokenization_*.py``). Loading them runs that code with the
user's permissions, and transformers even asks ``[y/N]`` on stdin when it is not
told ``trust_remote_code``. codex-ml refuses such a folder up front, with one
paragraph, so nothing is imported and nothing is asked.
"""

from __future__ import annotations

import json
from pathlib import Path

from codex_ml.config.errors import ConfigError

#: The files transformers reads ``auto_map`` from when it loads a model or a tokenizer.
CODE_MAP_FILES = ("config.json", "tokenizer_config.json")


def refuse_remote_code(directory: Path, *, option: str, kind: str) -> None:
    """Raise :class:`ConfigError` if a file of ``directory`` maps classes to code in the folder.

    ``option`` is the config path that named the folder (``model.path``), ``kind``
    what the folder holds (``model``). A file that is missing or not a JSON object
    is left for transformers to report.
    """
    for name in CODE_MAP_FILES:
        path = directory / name
        auto_map = _auto_map(path)
        if auto_map is None:
            continue
        modules = sorted({_module_of(target) for target in _targets(auto_map)} - {""})
        shipped = f" ({', '.join(m + '.py' for m in modules)})" if modules else ""
        raise ConfigError(
            f"{option}: {path} has an 'auto_map' key, so transformers cannot load it without "
            f"running code from the {kind} directory{shipped}, with your permissions; codex-ml "
            f"never runs code from a model or tokenizer folder. If the architecture is one "
            f"transformers ships, delete 'auto_map' from {name}; otherwise register a factory "
            "for it in a plugin, where the code is installed and reviewed like any package.",
            where=option,
        )


def _auto_map(path: Path) -> object | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("auto_map") if isinstance(data, dict) else None


def _targets(auto_map: object) -> list[str]:
    """Every ``module.Class`` string in an ``auto_map`` value (strings, lists, nested maps)."""
    if isinstance(auto_map, str):
        return [auto_map]
    if isinstance(auto_map, dict):
        return [t for value in auto_map.values() for t in _targets(value)]
    if isinstance(auto_map, (list, tuple)):
        return [t for value in auto_map for t in _targets(value)]
    return []


def _module_of(target: str) -> str:
    """``repo--configuration_x.Class`` -> ``configuration_x``."""
    return target.rsplit("--", 1)[-1].rpartition(".")[0]
