"""Fault plugins: real distributions, installed by hand, each broken in one way.

A distribution here is what pip leaves behind: a ``<name>-<version>.dist-info``
folder (``METADATA`` and ``entry_points.txt``) next to its modules, in a folder
that goes on ``sys.path``. Discovery finds it through the same scan as any
installed plugin. Every module that can run code first appends its name to an
*import log*, so a test can prove what was imported and what never was.

:data:`FAULTS` is the table the fault matrix in ``docs/reliability.md`` is
built from: one row per fault, with how the user is told about it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

PLUGINS = "codex_ml.plugins"
METRICS = "codex_ml.metrics"
TOKENIZERS = "codex_ml.tokenizers"

#: How a fault reaches the user (what the tests check for each).
PROBLEM = "problem"  # a plugin fault found while discovering: `problems()`, doctor FAIL
LOAD = "load"  # the key is listed; using it raises RegistryLoadError; doctor FAIL
AMBIGUOUS = "ambiguous"  # one key, two factories: RegistryConflictError; doctor FAIL
SLOW = "slow"  # works, but doctor names it as slow to import
SHADOWED = "shadowed"  # a second copy is ignored; doctor names it
NONE = "none"  # nothing is wrong to report: it lists and loads
UNREADABLE = "unreadable"  # the distribution's entry points cannot be read; doctor names the file


def logged(source: str, log: Path) -> str:
    """``source`` preceded by a line that appends the module's name to ``log`` when it runs."""
    prelude = f"with open({str(log)!r}, 'a') as _log:\n    _log.write(__name__ + '\\n')\n"
    return prelude + textwrap.dedent(source)


def install(
    site: Path,
    name: str,
    version: str,
    *,
    entry_points: Mapping[str, Mapping[str, str]],
    modules: Mapping[str, str],
    log: Path,
) -> Path:
    """Write distribution ``name`` into ``site`` as pip would; every module logs its import."""
    site.mkdir(parents=True, exist_ok=True)
    meta = site / f"{name.replace('-', '_')}-{version}.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
    (meta / "RECORD").write_text("")
    (meta / "entry_points.txt").write_text(
        "\n".join(
            f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in entries.items())
            for group, entries in entry_points.items()
        )
    )
    for module, source in modules.items():
        (site / f"{module}.py").write_text(logged(source, log))
    return meta


# -- the module sources ----------------------------------------------------------------------------

HEALTHY_COMPONENT = '''
def build(scale=1.0):
    """A healthy metric: always ``scale``."""
    return lambda preds, targets: scale
'''


def hook_module(body: str) -> str:
    return "from codex_ml.plugins import hookimpl\n\n" + textwrap.dedent(body)


def metrics_hook(returns: str, *, before: str = "") -> str:
    """A hook plugin whose metrics hook returns the expression ``returns``."""
    return hook_module(
        textwrap.dedent(before)
        + f"""
def build(scale=1.0):
    return lambda preds, targets: scale

@hookimpl
def codex_ml_register_metrics():
    return {returns}
"""
    )


MISSING_DEPENDENCY = "import rf_missing_dependency  # not installed anywhere, on purpose\n"
BAD_SYNTAX = "def build(:\n    return None\n"
SLOW_IMPORT = "import time\ntime.sleep(2.0)\n"
MANY = 10_000
#: The version every fault distribution declares (reports must name it).
VERSION = "6.0.1"
RAISING_HOOK = hook_module(
    """
def build(scale=1.0):
    return lambda preds, targets: scale

@hookimpl
def codex_ml_register_metrics():
    raise RuntimeError("rf: the metrics hook raised")

@hookimpl
def codex_ml_register_tokenizers():
    return {"rf_raises_tokenizer": build}
"""
)


def raising_hook(raised: str) -> str:
    """A hook plugin whose metrics hook raises ``raised``; its tokenizer hook is healthy."""
    return hook_module(
        f"""
import sys

def build(scale=1.0):
    return lambda preds, targets: scale

@hookimpl
def codex_ml_register_metrics():
    raise {raised}

@hookimpl
def codex_ml_register_tokenizers():
    return {{__name__ + "_tokenizer": build}}
"""
    )


ITEMS_RAISE = """
from collections.abc import Mapping

class Treacherous(Mapping):
    \"\"\"A mapping that looks fine until its items are read.\"\"\"

    def __getitem__(self, key):
        raise KeyError(key)

    def __iter__(self):
        return iter(["rf_never_listed"])

    def __len__(self):
        return 1

    def items(self):
        raise RuntimeError("rf: items() raised")
"""
#: An entry point whose module asks the registry for its own key while it is imported.
SELF_GET = (
    "from codex_ml.registry import metric_registry\n"
    "metric_registry.get('rf_entry_point_self_get')\n" + HEALTHY_COMPONENT
)


# -- the faults ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One faulty distribution and what the user must be told about it.

    ``build(site, log)`` installs it into ``site`` and returns any further
    folders that must go on ``sys.path`` after ``site``. ``entry_point`` is the
    entry-point name the report must give, ``error`` the original error's text,
    ``key`` the metric key concerned (if any), ``healthy`` the keys (of any
    kind) of this same distribution that must keep working. What the user sees
    is in the matrix of ``docs/reliability.md``.
    """

    name: str
    summary: str
    reported: str
    build: Callable[[Path, Path], list[Path]]
    entry_point: str = ""
    error: str = ""
    key: str = ""
    healthy: tuple[str, ...] = ()
    keys_added: int = 0
    reported_by: str = ""  # the distribution the report names, if not rf-<name>

    @property
    def distribution(self) -> str:
        return self.reported_by or f"rf-{self.name}"

    def __str__(self) -> str:
        return self.name


def _hook_fault(name: str, source: str) -> Callable[[Path, Path], list[Path]]:
    """A distribution with hook plugin ``rf_<name>`` and a healthy metric entry point."""
    module = f"rf_{name.replace('-', '_')}"

    def build(site: Path, log: Path) -> list[Path]:
        install(
            site,
            f"rf-{name}",
            VERSION,
            entry_points={
                PLUGINS: {module: module},
                METRICS: {f"{module}_healthy": f"{module}_healthy:build"},
            },
            modules={module: source, f"{module}_healthy": HEALTHY_COMPONENT},
            log=log,
        )
        return []

    return build


def _component_fault(
    name: str, source: str, *, target: str = "build", keys: Mapping[str, str] | None = None
) -> Callable[[Path, Path], list[Path]]:
    """A distribution with metric entry points into ``rf_<name>``, and a healthy one."""
    module = f"rf_{name.replace('-', '_')}"

    def build(site: Path, log: Path) -> list[Path]:
        entries = dict(keys) if keys is not None else {module: f"{module}:{target}"}
        entries[f"{module}_healthy"] = f"{module}_healthy:build"
        install(
            site,
            f"rf-{name}",
            VERSION,
            entry_points={METRICS: entries},
            modules={module: source, f"{module}_healthy": HEALTHY_COMPONENT},
            log=log,
        )
        return []

    return build


def _installed_twice(site: Path, log: Path) -> list[Path]:
    """The same distribution, byte for byte, in ``site`` and in a second sys.path folder."""
    copy = site.parent / "site-copy"
    for folder in (site, copy):
        install(
            folder,
            "rf-installed-twice",
            VERSION,
            entry_points={
                PLUGINS: {"rf_installed_twice": "rf_installed_twice"},
                METRICS: {"rf_installed_twice_healthy": "rf_installed_twice_healthy:build"},
            },
            modules={
                "rf_installed_twice": metrics_hook('{"rf_twice_hook_metric": build}'),
                "rf_installed_twice_healthy": HEALTHY_COMPONENT,
            },
            log=log,
        )
    return [copy]


def _one_module_two_names(site: Path, log: Path) -> list[Path]:
    install(
        site,
        "rf-one-module-two-names",
        VERSION,
        entry_points={
            PLUGINS: {"rf_alias_one": "rf_alias_mod", "rf_alias_two": "rf_alias_mod"},
            METRICS: {"rf_one_module_two_names_healthy": "rf_alias_healthy:build"},
        },
        modules={
            "rf_alias_mod": metrics_hook('{"rf_alias_metric": build}'),
            "rf_alias_healthy": HEALTHY_COMPONENT,
        },
        log=log,
    )
    return []


def _name_taken(site: Path, log: Path) -> list[Path]:
    """Two distributions that both call their hook plugin ``rf_taken``."""
    for dist, module, key in (
        ("rf-name-taken", "rf_taken_first", "rf_taken_first_metric"),
        ("rf-name-taken-too", "rf_taken_second", "rf_taken_second_metric"),
    ):
        install(
            site,
            dist,
            VERSION,
            entry_points={PLUGINS: {"rf_taken": module}},
            modules={module: metrics_hook(f"{{{key!r}: build}}")},
            log=log,
        )
    return []


def _many_entry_points() -> dict[str, str]:
    return {f"rf_ep_many_{i:05d}": "rf_entry_point_many_keys:build" for i in range(MANY)}


FAULTS: tuple[Fault, ...] = (
    Fault(
        "hook-import-error",
        "hook plugin fails to import (ImportError)",
        PROBLEM,
        _hook_fault("hook-import-error", MISSING_DEPENDENCY),
        entry_point="rf_hook_import_error",
        error="ModuleNotFoundError: No module named 'rf_missing_dependency'",
        healthy=("rf_hook_import_error_healthy",),
    ),
    Fault(
        "hook-syntax-error",
        "hook plugin has a SyntaxError",
        PROBLEM,
        _hook_fault("hook-syntax-error", BAD_SYNTAX),
        entry_point="rf_hook_syntax_error",
        error="SyntaxError: ",
        healthy=("rf_hook_syntax_error_healthy",),
    ),
    Fault(
        "hook-raises",
        "hook implementation raises",
        PROBLEM,
        _hook_fault("hook-raises", RAISING_HOOK),
        entry_point="rf_hook_raises",
        error="RuntimeError: rf: the metrics hook raised",
        healthy=("rf_hook_raises_healthy", "rf_raises_tokenizer"),
    ),
    Fault(
        "hook-non-mapping",
        "hook returns a non-mapping (a list)",
        PROBLEM,
        _hook_fault("hook-non-mapping", metrics_hook('["rf_listed_key"]')),
        entry_point="rf_hook_non_mapping",
        error="TypeError: expected a mapping of key -> factory (or None), got list",
        healthy=("rf_hook_non_mapping_healthy",),
    ),
    Fault(
        "hook-non-callable",
        "hook maps a key to a non-callable (42)",
        LOAD,
        _hook_fault("hook-non-callable", metrics_hook('{"rf_not_callable": 42}')),
        entry_point="rf_hook_non_callable",
        key="rf_not_callable",
        error="int 42",
        healthy=("rf_hook_non_callable_healthy",),
    ),
    Fault(
        "entry-point-import-error",
        "component entry point fails to import (ImportError)",
        LOAD,
        _component_fault("entry-point-import-error", MISSING_DEPENDENCY),
        entry_point="rf_entry_point_import_error",
        key="rf_entry_point_import_error",
        error="ModuleNotFoundError: No module named 'rf_missing_dependency'",
        healthy=("rf_entry_point_import_error_healthy",),
    ),
    Fault(
        "entry-point-syntax-error",
        "component entry point has a SyntaxError",
        LOAD,
        _component_fault("entry-point-syntax-error", BAD_SYNTAX),
        entry_point="rf_entry_point_syntax_error",
        key="rf_entry_point_syntax_error",
        error="SyntaxError: ",
        healthy=("rf_entry_point_syntax_error_healthy",),
    ),
    Fault(
        "entry-point-non-callable",
        "component entry point names a non-callable",
        LOAD,
        _component_fault("entry-point-non-callable", "CONSTANT = 42\n", target="CONSTANT"),
        entry_point="rf_entry_point_non_callable",
        key="rf_entry_point_non_callable",
        error="is a int, not a callable factory",
        healthy=("rf_entry_point_non_callable_healthy",),
    ),
    Fault(
        "hook-slow-import",
        "hook plugin takes 2 s to import",
        SLOW,
        _hook_fault(
            "hook-slow-import", metrics_hook('{"rf_slow_hook_metric": build}', before=SLOW_IMPORT)
        ),
        entry_point="rf_hook_slow_import",
        key="rf_slow_hook_metric",
        healthy=("rf_hook_slow_import_healthy", "rf_slow_hook_metric"),
    ),
    Fault(
        "entry-point-slow-import",
        "component entry point takes 2 s to import",
        SLOW,
        _component_fault("entry-point-slow-import", SLOW_IMPORT + HEALTHY_COMPONENT),
        entry_point="rf_entry_point_slow_import",
        key="rf_entry_point_slow_import",
        healthy=("rf_entry_point_slow_import_healthy", "rf_entry_point_slow_import"),
    ),
    Fault(
        "hook-many-keys",
        "hook plugin registers 10,000 keys",
        NONE,
        _hook_fault(
            "hook-many-keys",
            metrics_hook(f'{{f"rf_many_{{i:05d}}": build for i in range({MANY})}}'),
        ),
        entry_point="rf_hook_many_keys",
        healthy=("rf_hook_many_keys_healthy", "rf_many_00000", f"rf_many_{MANY - 1:05d}"),
        keys_added=MANY,
    ),
    Fault(
        "entry-point-many-keys",
        "distribution declares 10,000 component entry points",
        NONE,
        _component_fault("entry-point-many-keys", HEALTHY_COMPONENT, keys=_many_entry_points()),
        entry_point="rf_ep_many_00000",
        healthy=("rf_entry_point_many_keys_healthy", "rf_ep_many_00000", "rf_ep_many_09999"),
        keys_added=MANY,
    ),
    Fault(
        "hook-case-space-keys",
        "hook gives keys differing only in case or surrounding space",
        AMBIGUOUS,
        _hook_fault(
            "hook-case-space-keys",
            metrics_hook(
                '{"RF_Twin": build, " rf_twin ": lambda: len, "RF_Same": build, "rf_same ": build}'
            ),
        ),
        entry_point="rf_hook_case_space_keys",
        key="rf_twin",
        healthy=("rf_hook_case_space_keys_healthy", "rf_same"),
    ),
    Fault(
        "entry-point-case-keys",
        "entry points whose names differ only in case",
        AMBIGUOUS,
        _component_fault(
            "entry-point-case-keys",
            HEALTHY_COMPONENT + "\n\ndef other():\n    return len\n",
            keys={
                "RF_EP_Twin": "rf_entry_point_case_keys:build",
                "rf_ep_twin": "rf_entry_point_case_keys:other",
            },
        ),
        entry_point="RF_EP_Twin",
        key="rf_ep_twin",
        healthy=("rf_entry_point_case_keys_healthy",),
    ),
    Fault(
        "installed-twice",
        "the same distribution installed twice on sys.path (duplicate dist-info)",
        SHADOWED,
        _installed_twice,
        entry_point="rf_installed_twice",
        healthy=("rf_installed_twice_healthy", "rf_twice_hook_metric"),
    ),
    Fault(
        "one-module-two-names",
        "one hook module declared under two entry-point names",
        PROBLEM,
        _one_module_two_names,
        entry_point="rf_alias_two",
        error="its module 'rf_alias_mod' is already registered as plugin 'rf_alias_one' "
        "(rf-one-module-two-names 6.0.1); declare it under one name",
        healthy=("rf_one_module_two_names_healthy", "rf_alias_metric"),
    ),
    Fault(
        "name-taken",
        "two distributions declare one hook-plugin name",
        PROBLEM,
        _name_taken,
        entry_point="rf_taken",
        error="a plugin named 'rf_taken' is already registered by plugin 'rf_taken' "
        "(rf-name-taken 6.0.1)",
        healthy=("rf_taken_first_metric",),
        reported_by="rf-name-taken-too",
    ),
    Fault(
        "registers-at-import",
        "hook plugin calls register_metric() while it is imported",
        PROBLEM,
        _hook_fault(
            "registers-at-import",
            metrics_hook(
                '{"rf_from_hook": build}',
                before="from codex_ml.registry import register_metric\n"
                'register_metric("rf_registered_at_import", len)\n',
            ),
        ),
        entry_point="rf_registers_at_import",
        error="while plugins were being loaded",
        healthy=("rf_registers_at_import_healthy",),
    ),
    Fault(
        "looks-up-at-import",
        "hook plugin looks a key up while it is imported",
        PROBLEM,
        _hook_fault(
            "looks-up-at-import",
            metrics_hook(
                '{"rf_never_seen": build}',
                before="from codex_ml.registry import list_metrics\nlist_metrics()\n",
            ),
        ),
        entry_point="rf_looks_up_at_import",
        error="while plugins were being loaded",
        healthy=("rf_looks_up_at_import_healthy",),
    ),
    Fault(
        "hook-exits-at-import",
        "hook plugin raises SystemExit while it is imported (exit status 0)",
        PROBLEM,
        _hook_fault("hook-exits-at-import", "raise SystemExit\n"),
        entry_point="rf_hook_exits_at_import",
        error="failed to import: SystemExit (plugin code tried to end the process)",
        healthy=("rf_hook_exits_at_import_healthy",),
    ),
    Fault(
        "hook-sys-exit",
        "hook implementation calls sys.exit(3)",
        PROBLEM,
        _hook_fault("hook-sys-exit", raising_hook("sys.exit(3)")),
        entry_point="rf_hook_sys_exit",
        error="raised in its metric hook: SystemExit: 3 (plugin code tried to end the process)",
        healthy=("rf_hook_sys_exit_healthy", "rf_hook_sys_exit_tokenizer"),
    ),
    Fault(
        "hook-keyboard-interrupt",
        "hook implementation raises KeyboardInterrupt (no Ctrl-C was pressed)",
        PROBLEM,
        _hook_fault("hook-keyboard-interrupt", raising_hook("KeyboardInterrupt")),
        entry_point="rf_hook_keyboard_interrupt",
        error="raised in its metric hook: KeyboardInterrupt (raised by plugin code, not by Ctrl-C)",
        healthy=("rf_hook_keyboard_interrupt_healthy", "rf_hook_keyboard_interrupt_tokenizer"),
    ),
    Fault(
        "hook-generator-exit",
        "hook implementation raises GeneratorExit",
        PROBLEM,
        _hook_fault("hook-generator-exit", raising_hook("GeneratorExit('rf: closed')")),
        entry_point="rf_hook_generator_exit",
        error="raised in its metric hook: GeneratorExit: rf: closed",
        healthy=("rf_hook_generator_exit_healthy", "rf_hook_generator_exit_tokenizer"),
    ),
    Fault(
        "hook-items-raise",
        "hook returns a mapping whose items() raises",
        PROBLEM,
        _hook_fault("hook-items-raise", metrics_hook("Treacherous()", before=ITEMS_RAISE)),
        entry_point="rf_hook_items_raise",
        error="returned an invalid result from its metric hook: RuntimeError: rf: items() raised",
        healthy=("rf_hook_items_raise_healthy",),
    ),
    Fault(
        "entry-point-sys-exit",
        "component entry point calls sys.exit(3) while it is imported",
        LOAD,
        _component_fault("entry-point-sys-exit", "import sys\nsys.exit(3)\n"),
        entry_point="rf_entry_point_sys_exit",
        key="rf_entry_point_sys_exit",
        error="SystemExit: 3",
        healthy=("rf_entry_point_sys_exit_healthy",),
    ),
    Fault(
        "entry-point-keyboard-interrupt",
        "component entry point raises KeyboardInterrupt while it is imported",
        LOAD,
        _component_fault("entry-point-keyboard-interrupt", "raise KeyboardInterrupt\n"),
        entry_point="rf_entry_point_keyboard_interrupt",
        key="rf_entry_point_keyboard_interrupt",
        error="KeyboardInterrupt",
        healthy=("rf_entry_point_keyboard_interrupt_healthy",),
    ),
    Fault(
        "entry-point-generator-exit",
        "component entry point raises GeneratorExit while it is imported",
        LOAD,
        _component_fault("entry-point-generator-exit", "raise GeneratorExit('rf: closed')\n"),
        entry_point="rf_entry_point_generator_exit",
        key="rf_entry_point_generator_exit",
        error="GeneratorExit: rf: closed",
        healthy=("rf_entry_point_generator_exit_healthy",),
    ),
    Fault(
        "entry-point-base-exception",
        "component entry point raises a BaseException subclass of its own",
        LOAD,
        _component_fault(
            "entry-point-base-exception",
            "class RfStop(BaseException):\n    pass\n\nraise RfStop('rf: stop')\n",
        ),
        entry_point="rf_entry_point_base_exception",
        key="rf_entry_point_base_exception",
        error="RfStop: rf: stop",
        healthy=("rf_entry_point_base_exception_healthy",),
    ),
    Fault(
        "entry-point-self-get",
        "component entry point looks its own key up while it is imported",
        LOAD,
        _component_fault("entry-point-self-get", SELF_GET),
        entry_point="rf_entry_point_self_get",
        key="rf_entry_point_self_get",
        error="it asked for itself while it was being imported, an import cycle "
        "(metric 'rf_entry_point_self_get' -> metric 'rf_entry_point_self_get')",
        healthy=("rf_entry_point_self_get_healthy",),
    ),
)


def _not_utf8(site: Path, log: Path) -> list[Path]:
    """A distribution whose entry_points.txt holds a Latin-1 byte (in a comment, even)."""
    meta = install(
        site,
        "rf-not-utf8",
        VERSION,
        entry_points={METRICS: {"rf_not_utf8": "rf_not_utf8:build"}},
        modules={"rf_not_utf8": HEALTHY_COMPONENT},
        log=log,
    )
    with open(meta / "entry_points.txt", "ab") as fh:
        fh.write(b"# caf\xe9 (Latin-1)\n")
    return []


#: Not in :data:`FAULTS`: other suites read every entry_points.txt of those as UTF-8.
NOT_UTF8 = Fault(
    "not-utf8",
    "a distribution's entry_points.txt is not UTF-8",
    UNREADABLE,
    _not_utf8,
    key="rf_not_utf8",
    error="entry_points.txt is not valid UTF-8 (byte 0xe9 at offset",
)


def fault_named(name: str) -> Fault:
    return next(fault for fault in FAULTS if fault.name == name)


#: A distribution with nothing wrong: a hook plugin and entry points of two kinds.
HEALTHY_DISTRIBUTION = "rf-healthy"
HEALTHY_KEYS = {
    "metric": ("rf_healthy_hook_metric", "rf_healthy_ep_metric", "rf_healthy_lazy_metric"),
    "tokenizer": ("rf_healthy_ep_tokenizer",),
}


def install_healthy(site: Path, log: Path) -> None:
    install(
        site,
        HEALTHY_DISTRIBUTION,
        "1.0",
        entry_points={
            PLUGINS: {"rf_healthy_hooks": "rf_healthy_hooks"},
            METRICS: {"rf_healthy_ep_metric": "rf_healthy_ep:build"},
            TOKENIZERS: {"rf_healthy_ep_tokenizer": "rf_healthy_ep:build"},
        },
        modules={
            "rf_healthy_hooks": hook_module(
                """
                from codex_ml.plugins import LazyFactory

                def build(scale=1.0):
                    return lambda preds, targets: scale

                @hookimpl
                def codex_ml_register_metrics():
                    return {
                        "rf_healthy_hook_metric": build,
                        "rf_healthy_lazy_metric": LazyFactory("rf_healthy_lazy:build"),
                    }
                """
            ),
            "rf_healthy_ep": HEALTHY_COMPONENT,
            "rf_healthy_lazy": HEALTHY_COMPONENT,
        },
        log=log,
    )
