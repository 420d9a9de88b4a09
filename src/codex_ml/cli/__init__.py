"""The ``codex-ml`` command.

Sub-commands are imported only when chosen, so ``codex-ml plugins list``
never pays for torch or Hydra.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]

#: sub-command -> (module under codex_ml.cli, one-line help)
COMMANDS = {
    "train": ("train", "compose a run from registry keys with Hydra and train it"),
    "prepare": ("prepare", "tokenise a run's data once into its token store (same options)"),
    "evaluate": ("evaluate", "score a trained run: metrics, generations, rewards"),
    "generate": ("generate", "print samples from a trained run"),
    "export": ("export", "write a trained run as a folder transformers loads on its own"),
    "plugins": ("plugins", "list, show and check the installed components"),
}


def _parser() -> argparse.ArgumentParser:
    from codex_ml import __version__

    parser = argparse.ArgumentParser(
        prog="codex-ml",
        description="Compose, run and inspect training runs built from registry keys.",
    )
    parser.add_argument("--version", action="version", version=f"codex-ml {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    This is the program: if code it ran (a plugin) left threads running that would
    keep the process alive, it ends the process itself once they have had a few
    seconds (:mod:`codex_ml.cli.leftover_threads`).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        _parser().parse_args(args)  # prints usage / --help / --version and exits
        return 2
    from codex_ml.cli.leftover_threads import watch_leftover_threads

    try:
        status = _run_command(args[0], args[1:])
    except SystemExit as exc:  # a command that ends with sys.exit(): the same watch
        code = exc.code
        watch_leftover_threads(args[0], code if isinstance(code, int) else int(code is not None))
        raise
    watch_leftover_threads(args[0], status)
    return status


def _run_command(command: str, args: list[str]) -> int:
    """Run one sub-command; its exit status."""
    import importlib

    try:
        module = importlib.import_module(f"codex_ml.cli.{COMMANDS[command][0]}")
        status = int(module.run(args) or 0)
    except BrokenPipeError:  # `codex-ml plugins list | head` is not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:  # Ctrl-C outside a training loop: nothing to save
        print(f"codex-ml {command}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:  # an extra that is not installed, outside a command's own
        from codex_ml.cli.errors import report

        return report(command, exc)
    distributed = sys.modules.get("codex_ml.training.distributed")
    if distributed is not None and distributed.finalization_is_unsafe():
        # A torchrun worker: a normal exit can abort in torch's teardown (see there).
        distributed.exit_process(status)
    return status
