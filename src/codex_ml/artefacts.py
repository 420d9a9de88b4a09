"""Where downloaded artefacts (tokenizer and model files) are looked for.

The offline catalogue entries ``gpt2-offline`` and ``tinyllama-offline`` load
files that someone saved with ``save_pretrained``; they never download. This
module decides which directory those files come from, in one order for every
artefact:

1. the ``path=`` argument of the factory (when given, it is the only candidate:
   a path you typed that is wrong is an error, not a silent fallback);
2. the artefact's own environment variable (``CODEX_ML_GPT2_DIR``, ...);
3. the shared ``CODEX_ML_ARTIFACTS_DIR``, read as ``<dir>/models/<artefact>``;
4. the default ``artifacts/models/<artefact>/`` under
   :func:`codex_ml.resources.project_root`.

A candidate counts when it is a directory holding at least one file. When none
does, the error lists every path checked and where it came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from codex_ml.resources import project_root

#: The shared override: one directory laid out like the repository's ``artifacts/``.
SHARED_ENV_VAR = "CODEX_ML_ARTIFACTS_DIR"


@dataclass(frozen=True)
class Artefact:
    """A named set of files: its own environment variable and its default directory."""

    name: str
    env_var: str
    default_dir: str  # relative to project_root()


#: Adding an artefact is one line here.
ARTEFACTS: dict[str, Artefact] = {
    a.name: a
    for a in (
        Artefact("gpt2", "CODEX_ML_GPT2_DIR", "artifacts/models/gpt2"),
        Artefact("tinyllama", "CODEX_ML_TINYLLAMA_DIR", "artifacts/models/tinyllama"),
    )
}


def artefact_env_vars() -> list[str]:
    """Every environment variable that can move an artefact (tests clear them all)."""
    return [*(spec.env_var for spec in ARTEFACTS.values()), SHARED_ENV_VAR]


def candidate_dirs(
    artefact: str, explicit: str | os.PathLike[str] | None = None
) -> list[tuple[str, Path]]:
    """The directories to try for ``artefact``, in order, each with where it came from."""
    spec = _lookup(artefact)
    if explicit is not None:
        return [("path= argument", Path(explicit).expanduser())]
    candidates = []
    own = os.environ.get(spec.env_var)
    if own:
        candidates.append((f"${spec.env_var}", Path(own).expanduser()))
    shared = os.environ.get(SHARED_ENV_VAR)
    if shared:
        candidates.append(
            (
                f"${SHARED_ENV_VAR}/models/{spec.name}",
                Path(shared).expanduser() / "models" / spec.name,
            )
        )
    candidates.append(("default (project root)", project_root() / spec.default_dir))
    return candidates


def resolve_artefact_dir(
    key: str, artefact: str, explicit: str | os.PathLike[str] | None = None
) -> Path:
    """Return the first candidate directory that holds files for ``artefact``.

    ``key`` is the registry key asking (``"gpt2-offline"``); it only appears in
    the error, so a user knows which component wanted the files.
    """
    candidates = candidate_dirs(artefact, explicit)
    for _source, path in candidates:
        if _holds_files(path):
            return path
    raise FileNotFoundError(_not_found_message(key, _lookup(artefact), candidates))


def _lookup(artefact: str) -> Artefact:
    try:
        return ARTEFACTS[artefact]
    except KeyError:
        known = ", ".join(sorted(ARTEFACTS))
        raise ValueError(f"Unknown artefact {artefact!r}; known artefacts: {known}.") from None


def _holds_files(path: Path) -> bool:
    return path.is_dir() and any(child.is_file() for child in path.iterdir())


def _why_not(path: Path) -> str:
    if not path.exists():
        return "does not exist"
    if not path.is_dir():
        return "is not a directory"
    return "holds no files"


def _not_found_message(key: str, spec: Artefact, candidates: list[tuple[str, Path]]) -> str:
    checked = "\n".join(f"  - {path} ({source}): {_why_not(path)}" for source, path in candidates)
    default = project_root() / spec.default_dir
    return (
        f"No {spec.name} files found for registry key {key!r}. Checked:\n{checked}\n"
        f"Provide them (config.json, tokenizer files, model.safetensors) in one of these ways: "
        f"set {spec.env_var}=<dir>; pass path=<dir> to the factory; set "
        f"{SHARED_ENV_VAR}=<root> with the files in <root>/models/{spec.name}/; or copy the "
        f"output of save_pretrained() to {default}."
    )
