"""The ``codex-ml train --help`` page: codex-ml's presets and options, not Hydra's generic one."""

from __future__ import annotations

_USAGE = """\
usage: codex-ml train [-cn NAME] [-cd DIR]... [-m] [--cfg job] [OVERRIDE ...]

Compose a training run from registry keys with Hydra presets, and train it.

options:
  -cn, --config-name NAME  the run preset (default: train): {primary}
  -cd, --config-dir DIR    a folder of your own presets, searched after the bundled ones
                           (its subfolders are the groups: model/, data/, ...)
  -m, --multirun           one run per combination of comma-separated values
                           (training.lr=1e-3,3e-3), under runs/multirun/<time>/<n>
  --cfg job [--resolve]    print the composed config instead of training
  --version                print codex-ml's version
  -h, --help               this page; --hydra-help: which of Hydra's options work here

overrides (Hydra syntax):
  GROUP=PRESET             choose a preset:  model=offline/minilm  optimizer=sgd
  callbacks=[A,B]          choose several callbacks (none by default):  callbacks=[tensorboard,csv]
  GROUP.KEY=VALUE          change a value the preset sets:  training.max_steps=200
  +GROUP.KEY=VALUE         add a value the preset leaves out (the factory must accept it)
  ~GROUP.KEY               remove a value
  training.resume=RUN_DIR  continue a run (from its checkpoints/)
  hydra.run.dir=DIR        where the run directory goes (default: runs/<time>, made unique)

presets:
{groups}

Components are registry keys: `codex-ml plugins list` shows every key, and
`codex-ml plugins show KIND KEY` the parameters a preset can set.
Guide: docs/guides/offline_catalogue.md
"""

_HYDRA_HELP = """\
codex-ml train reads Hydra's override grammar and composes configs with Hydra's
compose API, so presets, config groups, defaults lists, interpolations and
`# @package` work as in any Hydra app. Hydra's job runner is not used: codex-ml
owns the run directory and its logging, and runs no Hydra callback, launcher,
sweeper, logging configuration or env_set (a config never imports code).

Hydra options that work:   -cn/--config-name, -cd/--config-dir, -m/--multirun,
                           -c/--cfg job|hydra|all, --resolve
Hydra settings read:       hydra.run.dir, hydra.sweep.dir, hydra.sweep.subdir
Not offered:               -cp/--config-path (use -cd), --info, -p/--package,
                           --shell-completion, --experimental-rerun, every other
                           hydra.* setting and hydra/* group
"""


def help_text(which: str = "codex-ml") -> str:
    """The help page; ``which="hydra"`` for ``--hydra-help``, ``"version"`` for ``--version``."""
    if which == "hydra":
        return _HYDRA_HELP
    if which == "version":
        from codex_ml import __version__

        return f"codex-ml {__version__}"
    from codex_ml.run.assemble import GROUP_KINDS, LIST_GROUPS
    from codex_ml.run.compose import group_presets, primary_presets

    groups = "\n".join(
        f"  {group + ':':<14} {', '.join(group_presets(group)) or '(none)'}"
        for group in (*GROUP_KINDS, *LIST_GROUPS)
    )
    return _USAGE.format(primary=", ".join(primary_presets()), groups=groups)
