"""User-facing failure: one paragraph on stderr and a non-zero exit, not a traceback.

``CODEX_ML_DEBUG=1`` brings the traceback back for bug reports.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from codex_ml.extras import install_hint, missing_extra

#: Exit status for input the user can fix (config, keys, files, checkpoints).
EXIT_USAGE = 2


def _is_user_error(exc: BaseException) -> bool:
    from codex_ml.config import ConfigError
    from codex_ml.registry import RegistryError

    user_errors: tuple[type[BaseException], ...] = (
        ConfigError,
        RegistryError,
        FileNotFoundError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
        ValueError,
        TypeError,
    )
    if "yaml" in sys.modules:  # a preset Hydra could not read: its message names file and line
        import yaml

        user_errors += (yaml.YAMLError,)
    if "codex_ml.regularfile" in sys.modules:  # a pipe or device where a run's file should be
        from codex_ml.regularfile import IrregularFileError

        user_errors += (IrregularFileError,)
    if "codex_ml.data.store.build" in sys.modules:  # a store that could not be written (disk full)
        from codex_ml.data.store.build import StoreWriteError

        user_errors += (StoreWriteError,)
    if "codex_ml.training" in sys.modules:
        from codex_ml.training.errors import CheckpointError, TrainingDivergedError

        user_errors += (CheckpointError, TrainingDivergedError)
    return isinstance(exc, user_errors)


def report(command: str, exc: BaseException) -> int:
    """Print ``exc`` as one paragraph for ``command``; return the exit status to use."""
    if os.environ.get("CODEX_ML_DEBUG"):
        traceback.print_exception(exc)
    missing = missing_extra(exc)
    if missing is not None:
        print(f"codex-ml {command}: error: {install_hint(*missing)}.", file=sys.stderr)
        return EXIT_USAGE
    message = " ".join(str(exc).split()) or type(exc).__name__
    if _is_user_error(exc):
        print(f"codex-ml {command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"codex-ml {command}: unexpected {type(exc).__name__}: {message} "
        f"(set CODEX_ML_DEBUG=1 for the traceback)",
        file=sys.stderr,
    )
    return 1


@contextmanager
def reported(command: str, exit: Callable[[int], object] = sys.exit) -> Iterator[None]:
    """Turn any exception in the block into :func:`report` and an exit."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        exit(report(command, exc))
