"""The documentation's examples, run for real.

Every fenced block of ``docs/guides/writing_a_plugin.md`` and
``docs/extension-registries.md`` is read by its info string:

- ``python file=PATH`` / ``toml file=PATH`` (``project=NAME`` for a second
  distribution): a file of an example distribution. The files are written out
  and the distribution installed into a scratch site directory the way pip
  installs a pure-Python wheel: its packages copied, its ``*.dist-info`` written
  from its ``pyproject.toml`` (no network and no build backend needed);
- ``python``: a snippet, run in a fresh interpreter with the page's
  distributions installed (``continues``: after the block before it);
- ``console``: ``$ [VAR=value ...] codex-ml ...`` commands, run as
  ``python -m codex_ml.cli ...``. The lines after a command are its output:
  each must match an output line, consecutive lines consecutively, ignoring
  runs of white space; a line ``...`` skips any number of lines and ``...``
  inside a line matches any text. ``exit=N`` is the expected status (else 0);
- ``scenario=fork``: run with the guide's second distribution installed too;
- ``norun``, and any other language: shown, not run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip vendors the same parser
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guides" / "writing_a_plugin.md"
SPEC = ROOT / "docs" / "extension-registries.md"
#: The project a ``file=`` block belongs to when it names none.
MAIN_PROJECT = "main"
#: scenario -> the projects of the page installed for it, in sys.path order.
SCENARIOS = {
    GUIDE: {"default": (MAIN_PROJECT,), "fork": (MAIN_PROJECT, "codex-ml-acme-fork")},
    SPEC: {"default": ()},
}
SUBPROCESS_TIMEOUT = 180


# -- reading the pages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its options, its text."""

    page: Path
    line: int
    language: str
    options: dict[str, str] = field(hash=False)
    text: str
    previous: Block | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return f"{self.page.stem}:{self.line}"

    @property
    def runs(self) -> bool:
        return "norun" not in self.options and "file" not in self.options

    @property
    def scenario(self) -> str:
        return self.options.get("scenario", "default")

    def code(self) -> str:
        """The snippet, preceded by the blocks it continues."""
        if "continues" not in self.options:
            return self.text
        assert self.previous is not None, f"{self.name}: `continues`, but no block before it"
        return self.previous.code() + "\n" + self.text


def read_blocks(page: Path) -> list[Block]:
    """Every fenced block of a Markdown page, in order."""
    blocks: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        stripped = lines[index].lstrip()
        if not stripped.startswith("```"):
            index += 1
            continue
        indent = len(lines[index]) - len(stripped)
        language, *words = stripped[3:].split() or [""]
        options = dict(word.partition("=")[::2] for word in words)
        start = index + 1
        index = start
        while index < len(lines) and lines[index].strip() != "```":
            index += 1
        if index == len(lines):
            raise AssertionError(f"{page.name}:{start}: unclosed code block")
        # A block inside a list item is indented; its lines lose that indentation only.
        body = "\n".join(
            line[indent:] if not line[:indent].strip() else line for line in lines[start:index]
        )
        previous = next((b for b in reversed(blocks) if b.language == language and b.runs), None)
        blocks.append(Block(page, start, language, options, body + "\n", previous))
        index += 1
    return blocks


BLOCKS = {page: read_blocks(page) for page in SCENARIOS}


def runnable(language: str) -> list[Block]:
    return [b for page in BLOCKS.values() for b in page if b.language == language and b.runs]


def ids(blocks: Sequence[Block]) -> list[str]:
    return [block.name for block in blocks]


# -- installing the guide's distributions ----------------------------------------------------------


def write_projects(page: Path, root: Path) -> dict[str, Path]:
    """Write every ``file=`` block of ``page`` into its project's folder under ``root``."""
    projects: dict[str, Path] = {}
    for block in BLOCKS[page]:
        if "file" not in block.options:
            continue
        project = block.options.get("project", MAIN_PROJECT)
        folder = projects.setdefault(project, root / project)
        target = folder / block.options["file"]
        assert not target.exists(), f"{block.name}: {target} is written twice"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text, encoding="utf-8")
    return projects


def install(project: Path, site: Path) -> dict:
    """Install a pure-Python project into ``site`` as pip installs its wheel; return [project]."""
    document = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    meta = document["project"]
    name, version = meta["name"], meta["version"]
    wheel = document.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {})
    packages = wheel.get("wheel", {}).get("packages", [])
    site.mkdir(parents=True, exist_ok=True)
    for package in packages:
        shutil.copytree(project / package, site / Path(package).name)
    dist_info = site / f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in entries.items()) + "\n"
            for group, entries in meta.get("entry-points", {}).items()
        ),
        encoding="utf-8",
    )
    (dist_info / "INSTALLER").write_text("test_docs_plugin_guide\n", encoding="utf-8")
    return meta


@dataclass
class Installed:
    """The pages' distributions, written out and installed, one site folder each."""

    projects: dict[Path, dict[str, Path]]
    sites: dict[Path, dict[str, Path]]
    metadata: dict[Path, dict[str, dict]]
    cwd: Path

    def sys_path(self, page: Path, scenario: str) -> list[Path]:
        return [self.sites[page][project] for project in SCENARIOS[page][scenario]]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("docs")
    result = Installed({}, {}, {}, root / "cwd")
    result.cwd.mkdir()
    for page in SCENARIOS:
        projects = write_projects(page, root / page.stem / "projects")
        result.projects[page] = projects
        result.sites[page] = {}
        result.metadata[page] = {}
        for project, folder in projects.items():
            site = root / page.stem / "site" / project
            result.sites[page][project] = site
            result.metadata[page][project] = install(folder, site)
    yield result


def run(
    argv: Sequence[str],
    *,
    sys_path: Sequence[Path] = (),
    env: dict[str, str | None] | None = None,
    cwd: Path,
) -> subprocess.CompletedProcess:
    """Run a fresh interpreter with ``sys_path`` in front (through ``PYTHONPATH``).

    ``env`` sets variables (``None`` removes one) over this process's environment,
    which the suite's conftest has made hermetic.
    """
    environ = dict(os.environ)
    inherited = [os.path.abspath(p) for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    environ["PYTHONPATH"] = os.pathsep.join([*map(str, sys_path), *inherited])
    for name, value in (env or {}).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=SUBPROCESS_TIMEOUT,
    )


def report(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


# -- the examples ----------------------------------------------------------------------------------


@pytest.mark.parametrize("block", runnable("python"), ids=ids(runnable("python")))
def test_python_example_runs(block: Block, installed: Installed) -> None:
    result = run(
        ["-c", block.code()],
        sys_path=installed.sys_path(block.page, block.scenario),
        cwd=installed.cwd,
    )
    assert result.returncode == 0, f"{block.name}\n{block.code()}\n{report(result)}"


@dataclass(frozen=True)
class Command:
    env: dict[str, str]
    argv: list[str]
    expected: list[str]


def commands(block: Block) -> list[Command]:
    """The ``$ ...`` commands of a console block, each with the output lines it shows."""
    parsed: list[Command] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            words = shlex.split(line[2:])
            env = {}
            while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
                key, _, value = words.pop(0).partition("=")
                env[key] = value
            assert words[:1] == ["codex-ml"], f"{block.name}: cannot run {line!r}; mark it norun"
            parsed.append(Command(env, ["-m", "codex_ml.cli", *words[1:]], []))
        elif line.strip():
            assert parsed, f"{block.name}: output before the first command"
            parsed[-1].expected.append(line)
    assert parsed, f"{block.name}: a console block without a `$ ` command; mark it norun"
    return parsed


def _squash(text: str) -> str:
    return " ".join(text.split())


def _line_matches(expected: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in _squash(expected).split("..."))
    return re.fullmatch(pattern, _squash(actual)) is not None


def check_output(expected: Sequence[str], actual: Sequence[str]) -> str | None:
    """Why ``actual`` does not show the excerpt ``expected``, or None when it does."""
    position, anywhere = 0, False
    for line in expected:
        if line.strip() == "...":
            anywhere = True
            continue
        candidates = range(position, len(actual)) if anywhere else range(position, position + 1)
        found = next(
            (i for i in candidates if i < len(actual) and _line_matches(line, actual[i])), None
        )
        if found is None:
            where = "anywhere after" if anywhere else "right after"
            return f"no output line matches {line!r} ({where} output line {position})"
        position, anywhere = found + 1, False
    if not anywhere and position != len(actual):
        return f"output goes on after the last line shown: {actual[position]!r}"
    return None


def console_params() -> list:
    """The console blocks; ``doctor`` (imports every component) and ``train`` are slow."""
    slow = re.compile(r"^\$ .*codex-ml (plugins doctor|train)\b", flags=re.M)
    return [
        pytest.param(block, id=block.name, marks=[pytest.mark.slow] * bool(slow.search(block.text)))
        for block in runnable("console")
    ]


@pytest.mark.parametrize("block", console_params())
def test_console_example_prints_what_the_page_shows(block: Block, installed: Installed) -> None:
    status = int(block.options.get("exit", "0"))
    for command in commands(block):
        result = run(
            command.argv,
            sys_path=installed.sys_path(block.page, block.scenario),
            env=command.env,
            cwd=installed.cwd,
        )
        shown = f"{block.name}: {' '.join(command.argv)}\n{report(result)}"
        assert result.returncode == status, shown
        problem = check_output(command.expected, (result.stdout + result.stderr).splitlines())
        assert problem is None, f"{problem}\n{shown}"


@pytest.mark.parametrize("block", runnable("toml"), ids=ids(runnable("toml")))
def test_toml_example_parses_and_names_real_groups(block: Block) -> None:
    _check_groups(block, tomllib.loads(block.text))


def _check_groups(block: Block, document: dict) -> None:
    from codex_ml.plugins import KINDS, PLUGIN_GROUP

    known = {PLUGIN_GROUP, *(kind.entry_point_group for kind in KINDS)}
    groups = document.get("project", {}).get("entry-points", {})
    assert groups, f"{block.name}: declares no entry point"
    for group in groups:
        if group.startswith("codex_ml."):
            assert group in known, f"{block.name}: {group} is not a codex-ml entry-point group"


def test_the_pages_hold_examples_of_every_sort() -> None:
    """The parser must not skip what it should run (a typo in a fence would do that)."""
    guide = BLOCKS[GUIDE]
    assert {"pyproject.toml", "tests/test_acme.py"} <= {b.options.get("file") for b in guide}
    assert sum(b.language == "python" and b.runs for b in guide) >= 2
    assert sum(b.language == "console" and b.runs for b in guide) >= 5
    assert any(b.language == "python" and b.runs for b in BLOCKS[SPEC])
    assert any(b.language == "console" and b.runs for b in BLOCKS[SPEC])
    for page, blocks in BLOCKS.items():
        for block in blocks:
            assert block.scenario in SCENARIOS[page], f"{block.name}: unknown scenario"
            if block.language == "console" and block.runs:
                commands(block)
            if block.language == "python":
                compile(block.text, block.name, "exec")
            if block.language == "toml" and "file" in block.options:
                _check_groups(block, tomllib.loads(block.text))


def test_guide_distribution_is_listed_with_its_name_and_version(installed: Installed) -> None:
    import json

    meta = installed.metadata[GUIDE][MAIN_PROJECT]
    result = run(
        ["-m", "codex_ml.cli", "plugins", "list", "--json"],
        sys_path=installed.sys_path(GUIDE, "default"),
        cwd=installed.cwd,
    )
    assert result.returncode == 0, report(result)
    listing = json.loads(result.stdout)
    ours = {
        (entry["kind"], entry["key"]): entry
        for kind, entries in listing.items()
        if kind != "problems"
        for entry in entries
        if entry["distribution"] == meta["name"]
    }
    assert all(entry["version"] == meta["version"] for entry in ours.values())
    from codex_ml.plugins import KINDS

    groups = {kind.entry_point_group: kind.name for kind in KINDS}
    for group, entries in meta["entry-points"].items():
        for key, target in entries.items():
            if group in groups:
                entry = ours[(groups[group], key)]
                assert (entry["source"], entry["target"]) == ("entry-point", target)
    hook_plugins = set(meta["entry-points"]["codex_ml.plugins"])
    from_hooks = {k for k, e in ours.items() if e["source"] == "plugin"}
    assert from_hooks == {("reward_model", "acme-brevity"), ("model", "acme-bigram")}
    assert {ours[k]["plugin"] for k in from_hooks} == hook_plugins
    assert listing["problems"] == []


@pytest.mark.parametrize("name", ["test_acme.py", "test_acme_contracts.py"])
def test_guide_plugin_tests_pass_with_the_shipped_fixtures(installed: Installed, name: str) -> None:
    project = installed.projects[GUIDE][MAIN_PROJECT]
    test_file = project / "tests" / name
    expected = len(re.findall(r"^def test_", test_file.read_text(), flags=re.M))
    # Hypothesis's pytest plugin costs two seconds to import; the guide's tests don't use it.
    quiet = ["-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
    result = run(
        ["-m", "pytest", *quiet, str(test_file.relative_to(project))],
        sys_path=installed.sys_path(GUIDE, "default"),
        env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": None, "PYTEST_ADDOPTS": None},
        cwd=project,
    )
    assert result.returncode == 0, report(result)
    assert f"{expected} passed" in result.stdout, report(result)


# -- the pages against the code --------------------------------------------------------------------

DECISIONS = ROOT / "docs" / "decisions.md"
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("page", [SPEC, GUIDE, DECISIONS], ids=lambda page: page.stem)
def test_relative_links_lead_somewhere(page: Path) -> None:
    for link in _LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", link):
            continue  # http(s), mailto
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name} links to {link}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", target.read_text(encoding="utf-8"), flags=re.M)
            assert anchor in {_slug(h) for h in headings}, f"{page.name}: no heading #{anchor}"


def test_spec_page_names_every_registry_group_hook_and_catalogue_key() -> None:
    from codex_ml.catalogue.plugin import CATALOGUE
    from codex_ml.plugins import KINDS

    text = SPEC.read_text(encoding="utf-8")
    for kind in KINDS:
        for name in (f"codex_ml.registry.{kind.name}_registry", kind.entry_point_group):
            assert f"`{name}`" in text, name
        assert f"`{kind.hook_name}`" in text, kind.hook_name
        assert kind.hook_name in GUIDE.read_text(encoding="utf-8"), kind.hook_name
        for key in CATALOGUE[kind.name]:
            assert f"`{key}`" in text, f"catalogue {kind.name} {key!r} is not in the spec page"


def test_spec_page_names_the_public_api() -> None:
    import inspect

    import codex_ml.plugins
    import codex_ml.registry
    from codex_ml.registry import EntryInfo, Registry

    text = SPEC.read_text(encoding="utf-8")
    per_kind = re.compile(r"^(register_|get_|list_)|_registry$")
    names = [n for n in codex_ml.registry.__all__ if not per_kind.search(n)]
    names += ["get_registry", *codex_ml.plugins.__all__]
    names += [n for n, _ in inspect.getmembers(Registry) if not n.startswith("_")]
    names += [n for n in dir(EntryInfo) if not n.startswith("_")]
    missing = [name for name in names if not re.search(rf"[`.]{name}\b", text)]
    assert not missing, f"not described in {SPEC.name}: {missing}"


def test_spec_page_names_every_setting_and_command() -> None:
    text = SPEC.read_text(encoding="utf-8")
    sources = "".join(
        (ROOT / "src" / "codex_ml" / part).read_text(encoding="utf-8")
        for part in ("plugins/policy.py", "plugins/discovery.py")
    )
    variables = set(re.findall(r"CODEX_ML_[A-Z_]+", sources))
    assert variables >= {"CODEX_ML_DISABLE_PLUGIN_AUTOLOAD", "CODEX_ML_BLOCK_PLUGINS"}
    for name in variables:
        assert f"`{name}" in text, name
    for command in ("list", "show", "doctor"):
        assert f"`codex-ml plugins {command}" in text, command
    for fixture in ("isolated_registries", "codex_registry"):
        assert f"`{fixture}`" in text, fixture
    assert "`plugins/`" in text and "`examples/plugins/`" in text
    assert "pytest tests/test_registry.py" in text and (ROOT / "tests/test_registry.py").is_file()
