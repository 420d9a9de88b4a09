"""Compose a run's config with Hydra's compose API, and use nothing else of Hydra.

``@hydra.main`` does more than compose: it configures :mod:`logging` from
``hydra.job_logging`` (whose ``()`` and ``class`` keys are imported), runs
``hydra.callbacks`` and a multirun's launcher and sweeper from their
``_target_``, applies ``hydra.job.env_set`` to the environment, and follows
``hydra.searchpath`` entries, where ``pkg://name`` imports a package. Any YAML
that reaches the composition (an override, a preset from ``--config-dir``, a
``# @package _global_`` fragment) could set one of those. codex-ml therefore
only *composes*; it owns the run directory, its records and its logging itself
(``docs/decisions.md``), and checks the composed ``hydra`` node so that a preset
which tries to use one of those settings is refused rather than silently inert.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from codex_ml.config import ConfigError

#: The ``hydra.*`` settings codex-ml reads; every other one is refused on the command line.
RUN_DIR_SETTINGS = ("hydra.run.dir", "hydra.sweep.dir", "hydra.sweep.subdir")

#: Parts of the composed ``hydra`` node that name code or change the process. A preset may not
#: change them from Hydra's stock values: codex-ml never acts on them, and a silent no-op would
#: hide a preset that expected its code to run.
_GUARDED = (
    "callbacks",
    "launcher",
    "sweeper",
    "job_logging",
    "hydra_logging",
    "env",
    "job.env_set",
    "job.env_copy",
)

_NEVER_IMPORTS = (
    "codex-ml configs never import code: codex-ml does not run Hydra's callbacks, launchers, "
    "sweepers, logging configuration or env_set"
)


def check_hydra_overrides(overrides: Sequence[str]) -> None:
    """Refuse every command-line override of Hydra's own settings but the run directories."""
    for override in overrides:
        key = override.split("=", 1)[0].strip().lstrip("+~")
        if not key.startswith(("hydra.", "hydra/")) and key != "hydra":
            continue
        if key in RUN_DIR_SETTINGS and "=" in override and not override.startswith(("~", "+")):
            continue
        raise ConfigError(
            f"{key}: {_NEVER_IMPORTS}; of Hydra's settings codex-ml reads only "
            f"{', '.join(RUN_DIR_SETTINGS)}. Remove {override!r}; extra preset folders are "
            f"given with -cd DIR, and components are chosen by registry key (`name: <key>`, "
            f"see `codex-ml plugins list`).",
            where=key,
        )


def search_path_uris(config_dirs: Sequence[str | Path]) -> list[str]:
    """``file://`` URIs of the ``-cd`` folders, the only search path entries codex-ml adds."""
    uris = []
    for folder in config_dirs:
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(
                f"-cd {folder}: not a folder; give the folder that holds your presets "
                f"(its subfolders are the groups: model/, data/, ...).",
                where="-cd",
            )
        uris.append(path.as_uri())
    return uris


def check_primary_preset(config_name: str, config_dirs: Sequence[str | Path]) -> None:
    """Refuse a primary preset (``-cn``) that sets ``hydra.searchpath``.

    Hydra reads that key from the primary config before composing and would
    import a ``pkg://`` entry's package. codex-ml always passes its own search
    path, which takes precedence, so such an entry is never followed; it is
    refused so that the preset's author learns that ``-cd`` is the way.
    """
    from omegaconf import OmegaConf

    from codex_ml.resources import configs_dir

    for folder in (*map(Path, config_dirs), configs_dir()):
        candidate = folder.expanduser() / f"{config_name}.yaml"
        if not candidate.is_file():
            continue
        try:
            loaded = OmegaConf.load(candidate)
        except Exception as exc:
            raise ConfigError(
                f"{candidate}: not a YAML mapping Hydra can read ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())}).",
                where=config_name,
            ) from None
        if OmegaConf.is_dict(loaded) and OmegaConf.select(loaded, "hydra.searchpath") is not None:
            raise ConfigError(
                f"hydra.searchpath: preset {candidate} sets it, and Hydra would import the "
                f"packages it names. codex-ml takes extra preset folders only with -cd DIR; "
                f"remove hydra.searchpath from the preset.",
                where="hydra.searchpath",
            )


def compose_config(
    config_name: str, overrides: Sequence[str], config_dirs: Sequence[str | Path] = ()
) -> Any:
    """The composed config (with its ``hydra`` node), checked so that nothing in it runs code.

    Raises :class:`ConfigError` for a Hydra setting that is refused and for a
    composition Hydra rejects (unknown preset, bad override), in one paragraph.
    """
    from hydra import compose
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from codex_ml.run.key_choices import store_key_choices
    from codex_ml.run.resolvers import register_resolvers

    check_hydra_overrides(overrides)
    check_primary_preset(config_name, config_dirs)
    register_resolvers()
    store_key_choices(overrides, config_dirs)  # `data=KEY` for a key without a preset
    # Always given (empty), so that a primary preset's own hydra.searchpath is never followed.
    own = ["hydra.searchpath=[]"]
    try:
        with _search_path(config_dirs):
            cfg = compose(config_name, overrides=[*overrides, *own], return_hydra_config=True)
            stock = _stock_hydra_node()
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(composition_message(exc, config_dirs), where="overrides") from None
    check_composed_hydra(cfg, stock)
    return cfg


@contextmanager
def _search_path(config_dirs: Sequence[str | Path]) -> Iterator[None]:
    """Hydra initialised as ``@hydra.main`` with ``-cd`` would be: the bundled presets first,
    then each ``-cd`` folder (``file://`` only), then the structured configs."""
    from hydra import version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra

    from codex_ml.resources import configs_dir

    search_path = create_config_search_path(str(configs_dir()))
    for uri in search_path_uris(config_dirs):
        search_path.prepend("command-line", uri, anchor=SearchPathQuery(provider="schema"))
    version.setbase("1.3")
    GlobalHydra.instance().clear()
    Hydra.create_main_hydra2(task_name="train", config_search_path=search_path)
    try:
        yield
    finally:
        GlobalHydra.instance().clear()


_stock: list[Any] = []


def _stock_hydra_node() -> Any:
    """Hydra's own settings alone (no search path): what a preset must leave as it is."""
    from hydra import compose

    if not _stock:
        _stock.append(compose(None, overrides=["hydra.searchpath=[]"], return_hydra_config=True))
    return _stock[0]


def check_composed_hydra(cfg: Any, stock: Any) -> None:
    """Refuse a composed ``hydra`` node whose code-naming parts differ from Hydra's stock ones."""
    from omegaconf import OmegaConf

    for path in _GUARDED:
        mine = OmegaConf.select(cfg, f"hydra.{path}", throw_on_missing=False)
        theirs = OmegaConf.select(stock, f"hydra.{path}", throw_on_missing=False)
        if _plain(mine) != _plain(theirs):
            raise ConfigError(
                f"hydra.{path}: a preset sets it{_chosen_by(cfg, stock, path)}, but "
                f"{_NEVER_IMPORTS}. "
                f"Remove hydra.{path} from the preset; a run's logging and environment are "
                f"codex-ml's own (see docs/decisions.md).",
                where=f"hydra.{path}",
            )


def _plain(node: Any) -> Any:
    from omegaconf import OmegaConf

    if OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=False)
    return node


def _chosen_by(cfg: Any, stock: Any, path: str) -> str:
    """`` (hydra/<group>=<choice>)`` where a config group choice other than Hydra's gave it."""
    from omegaconf import OmegaConf

    key = f"hydra.runtime.choices.hydra/{path.split('.')[0]}"
    choice = OmegaConf.select(cfg, key, throw_on_missing=False)
    if choice is None or choice == OmegaConf.select(stock, key, throw_on_missing=False):
        return ""
    return f" (hydra/{path.split('.')[0]}={choice})"


def composition_message(exc: BaseException, config_dirs: Sequence[str | Path] = ()) -> str:
    """Hydra's composition error in one paragraph, without its ``HYDRA_FULL_ERROR`` advice."""
    from hydra.errors import MissingConfigException

    if isinstance(exc, MissingConfigException) or _MISSING_OPTION.search(str(exc)):
        return missing_preset_message(exc, config_dirs)
    text = " ".join(str(exc).split())
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({' '.join(str(cause).split())})"
    for advice in (
        "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.",
        "Use '+' to append to the config instead of overriding.",
    ):
        text = text.replace(advice, "")
    if "Ambiguous value for argument" in text:
        text += " Pass -m (--multirun) to sweep over the values."
    return text.strip()


#: How Hydra names a preset it cannot find: ``Could not find 'g/x'`` or ``Could not load 'g/x'``.
_MISSING_OPTION = re.compile(r"Could not (?:find|load) '([^']+)'")


def missing_preset_message(exc: BaseException, config_dirs: Sequence[str | Path] = ()) -> str:
    """An unknown preset, registry key or ``-cn`` name, with the presets and keys that exist."""
    text = str(exc)
    primary = re.search(r"Cannot find primary config '([^']+)'", text)
    if primary:
        name, presets = primary.group(1), primary_presets()
        return (
            f"there is no run preset {name!r} (-cn).{_did_you_mean(name, presets)} "
            f"Available: {', '.join(presets)}."
        )
    match = _MISSING_OPTION.search(text)
    if not match:
        return " ".join(text.split())
    group, _, choice = match.group(1).partition("/")
    return unknown_choice_message(group, choice, config_dirs)


def unknown_choice_message(group: str, choice: str, config_dirs: Sequence[str | Path] = ()) -> str:
    """``GROUP=CHOICE`` names no preset and no registry key: what does exist, closest first."""
    from codex_ml.run.key_choices import LIST_GROUPS, registry_keys

    presets = group_presets(group, config_dirs)
    keys = [key for key in registry_keys(group) if key not in presets]
    listed = group in LIST_GROUPS  # callbacks=[a,b]: the unknown one is an element
    hint = _did_you_mean(choice, [*presets, *keys], prefix="" if listed else f"{group}=")
    what = f"no {group} preset or registry key" if keys or not presets else f"no {group} preset"
    known = [f"presets: {', '.join(presets)}" if presets else ""]
    known.append(f"registry keys: {', '.join(keys)}" if keys else "")
    available = "; ".join(filter(None, known))
    asked = f"{group}=[...{choice}...]" if listed else f"{group}={choice}"
    return f"{asked}: there is {what} {choice!r}.{hint}" + (
        f" Available {available}." if available else ""
    )


def _did_you_mean(name: str, options: Sequence[str], prefix: str = "") -> str:
    import difflib

    close = difflib.get_close_matches(name, list(options), n=1)
    return f" Did you mean {prefix}{close[0]}?" if close else ""


def group_presets(group: str, config_dirs: Sequence[str | Path] = ()) -> list[str]:
    """The presets of one config group (``offline/minilm``...), bundled and in ``-cd`` folders."""
    from codex_ml.resources import configs_dir

    found: set[str] = set()
    for base in (configs_dir(), *(Path(d).expanduser() for d in config_dirs)):
        root = base / group
        if root.is_dir():
            found.update(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))
    return sorted(found)


def primary_presets() -> list[str]:
    """The configs ``-cn`` can name: every bundled preset outside the component groups."""
    from codex_ml.resources import configs_dir
    from codex_ml.run.assemble import GROUP_KINDS, LIST_GROUPS

    root = configs_dir()
    return sorted(
        str(path.relative_to(root).with_suffix(""))
        for path in root.rglob("*.yaml")
        if path.relative_to(root).parts[0] not in (*GROUP_KINDS, *LIST_GROUPS)
    )
