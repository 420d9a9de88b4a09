"""The one-per-process scan of installed entry points, with a persistent index.

``importlib.metadata.entry_points()`` reads the metadata of every installed
distribution on every call; pluggy's ``load_setuptools_entrypoints`` does that
and then imports every plugin. Here the installed distributions are read once
per process for all ``codex_ml.*`` groups together, nothing is imported, and
the result is kept in an on-disk index so that the next process only has to
``stat`` a handful of paths to know it is still true.

The index is keyed by the interpreter and ``sys.path``. It is trusted only
while every ``sys.path`` entry and every ``entry_points.txt`` it read keep
their modification times, so installing or removing a distribution (which
changes its ``sys.path`` directory) is seen by the very next lookup. A path
modified within the last few seconds is never trusted (the "racy timestamp"
problem git has too). Writes go through :mod:`codex_ml.atomicfile` (a new
temporary file, created exclusively, never through a symlink, renamed into
place), so two processes building the index at once each leave a complete
file. Only a regular file of a sane size that starts with the index's header
and checksum is read; anything else in its place (a FIFO, a symlink, a
truncated or forged file) is rebuilt.

An ``entry_points.txt`` that is not UTF-8 is a fault of its distribution,
kept in :attr:`Scan.faults` with the file named: its entries are ignored, the
others are read as usual. (``importlib.metadata`` raises on such a file for
every distribution at once, so other packages' entry-point lookups fail too.)

Set ``CODEX_ML_DISCOVERY_CACHE=0`` to skip the index, ``CODEX_ML_CACHE_DIR`` to
move it (:mod:`codex_ml.cache`).

Like the rest of ``plugins/`` this imports no other layer of codex_ml; it uses
two leaf modules that import nothing of codex_ml: :mod:`codex_ml.cache` and
:mod:`codex_ml.atomicfile`.
"""

from __future__ import annotations

import marshal
import os
import stat
import sys
import threading
from collections import namedtuple

from codex_ml.cache import cache_folder

TYPE_CHECKING = False  # typing is not imported on the listing path (~2 ms per process)
if TYPE_CHECKING:
    from typing import NamedTuple

    class _Record(NamedTuple):  # what type checkers see of the namedtuple below
        group: str
        name: str
        value: str
        distribution: str  # its name (from its metadata, else its folder's name)
        version: str  # "" when the metadata has none
        location: str

    class _Fault(NamedTuple):
        distribution: str
        file: str
        message: str

else:
    _Record = namedtuple("EntryPointRecord", "group name value distribution version location")
    _Fault = namedtuple("ScanFault", "distribution file message")

__all__ = [
    "EntryPointRecord",
    "Scan",
    "ScanFault",
    "installed_entry_points",
    "rescan",
    "shadowed_distributions",
    "undecodable_hint",
]

#: Only entry-point groups starting with this prefix are recorded.
GROUP_PREFIX = "codex_ml."

_INDEX_FORMAT = 4  # 2: values without [extras]; 3: marshal, not JSON; 4: header, faults
#: The first bytes of an index file; a CRC-32 of the rest follows.
_INDEX_MAGIC = b"codex-ml discovery index\n"
#: A bigger file is not an index (100,000 distributions make about 20 MB).
_INDEX_MAX_BYTES = 256 * 1024 * 1024
#: Paths changed more recently than this are not trusted in a persisted index.
_RACY_SECONDS = 2.0


# A named tuple, not a dataclass: every process start reads thousands of these from
# the index, and a tuple is built ten times faster than a frozen dataclass instance.
class EntryPointRecord(_Record):
    """One declared entry point, with the distribution that declared it.

    ``location`` is the ``*.dist-info`` / ``*.egg-info`` directory.
    """

    __slots__ = ()

    @property
    def module(self) -> str:
        return self.value.partition(":")[0].strip()

    @property
    def attr(self) -> str:
        return self.value.partition(":")[2].strip()


class ScanFault(_Fault):
    """A distribution whose entry points could not be read: the file, and a one-paragraph report."""

    __slots__ = ()


class Scan:
    """Every ``codex_ml.*`` entry point installed, in ``sys.path`` order, grouped once.

    ``faults`` holds a :class:`ScanFault` for each distribution whose entry
    points could not be read at all.
    """

    __slots__ = ("_groups", "entries", "faults", "from_index")

    entries: tuple[EntryPointRecord, ...]
    from_index: bool  # read from the persisted index, not from the installed metadata
    faults: tuple[ScanFault, ...]

    def __init__(
        self,
        entries: tuple[EntryPointRecord, ...],
        from_index: bool = False,
        faults: tuple[ScanFault, ...] = (),
    ) -> None:
        self.entries = entries
        self.from_index = from_index
        self.faults = faults
        self._groups: dict[str, list[EntryPointRecord]] = {}
        for record in entries:
            found = self._groups.get(record.group)
            if found is None:
                self._groups[record.group] = [record]
            else:
                found.append(record)

    def group(self, name: str) -> list[EntryPointRecord]:
        """The entries of one group, in ``sys.path`` order (a new list)."""
        return list(self._groups.get(name, ()))

    def __repr__(self) -> str:
        return f"Scan({len(self.entries)} entries, from_index={self.from_index})"


_lock = threading.Lock()
_scan: Scan | None = None


def installed_entry_points() -> Scan:
    """The scan of this process, made on first use."""
    global _scan
    scan = _scan
    if scan is None:
        with _lock:
            if _scan is None:
                _scan = _load_or_build()
            scan = _scan
    return scan


def rescan() -> Scan:
    """Forget this process's scan and look at the installed distributions again."""
    global _scan
    with _lock:
        _scan = None
    return installed_entry_points()


# -- scanning -----------------------------------------------------------------------------------


def normalize_distribution_name(name: str) -> str:
    """PEP 503 normalisation: ``Codex_ML.Toy`` and ``codex-ml-toy`` are one distribution.

    Runs of ``-``, ``_`` and ``.`` become one ``-`` (what ``re.sub(r"[-_.]+", "-",
    name)`` does, without importing ``re`` on the listing path), then lower case.
    """
    name = name.replace("_", "-").replace(".", "-")
    while "--" in name:
        name = name.replace("--", "-")
    return name.lower()


def _search_paths() -> list[str]:
    return [os.path.abspath(entry or ".") for entry in sys.path]


def _metadata_dirs(directory: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = [name for name in names if name.endswith((".dist-info", ".egg-info"))]
    # A deterministic order; a wheel's dist-info beats a stale in-tree egg-info.
    found.sort(key=lambda name: (name.endswith(".egg-info"), name))
    return found


def _name_from_dir(dirname: str) -> str:
    stem = dirname.rsplit(".", 1)[0]
    return stem.split("-", 1)[0]


def _read_headers(meta_dir: str) -> tuple[str | None, str | None]:
    """Name and Version from METADATA / PKG-INFO, reading only the header block."""
    name = version = None
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(meta_dir, filename), encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if not line.strip():
                        break
                    if line.startswith("Name:") and name is None:
                        name = line[5:].strip()
                    elif line.startswith("Version:") and version is None:
                        version = line[8:].strip()
        except OSError:
            continue
        break
    return name, version


def parse_entry_points(text: str) -> list[tuple[str, str, str]]:
    """``(group, name, value)`` for every ``codex_ml.*`` entry in an entry_points.txt."""
    records = []
    group = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip()
            continue
        if group is None or not group.startswith(GROUP_PREFIX) or "=" not in line:
            continue
        name, _, value = line.partition("=")
        records.append((group, name.strip(), object_reference(value)))
    return records


def object_reference(value: str) -> str:
    """``module:attr`` of an entry-point value, without its optional ``[extras]``."""
    return value.partition("[")[0].strip()


def _scan_directory(
    directory: str,
    seen: set[str],
    records: list[EntryPointRecord],
    watched: dict[str, int],
    faults: list[ScanFault],
) -> None:
    for dirname in _metadata_dirs(directory):
        meta_dir = os.path.join(directory, dirname)
        normalized = normalize_distribution_name(_name_from_dir(dirname))
        if normalized in seen:
            continue  # the same distribution earlier on sys.path wins
        seen.add(normalized)
        ep_file = os.path.join(meta_dir, "entry_points.txt")
        try:
            with open(ep_file, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            watched[ep_file] = _mtime_ns(ep_file)  # so that a fixed file is seen at once
            faults.append(_undecodable(meta_dir, dirname, ep_file, exc))
            continue
        if "[" + GROUP_PREFIX not in text:
            continue
        declared = parse_entry_points(text)
        if not declared:
            continue
        watched[ep_file] = _mtime_ns(ep_file)
        name, version = _read_headers(meta_dir)
        name = name or _name_from_dir(dirname)
        for group, ep_name, value in declared:
            records.append(EntryPointRecord(group, ep_name, value, name, version or "", meta_dir))


def _undecodable(meta_dir: str, dirname: str, ep_file: str, error: UnicodeDecodeError) -> ScanFault:
    """The fault of an entry_points.txt that is not UTF-8."""
    name, version = _read_headers(meta_dir)
    name = name or _name_from_dir(dirname)
    dist = f"{name} {version}" if version else name
    byte = error.object[error.start]
    return ScanFault(
        name,
        ep_file,
        (
            f"distribution {dist}: {ep_file} is not valid UTF-8 (byte 0x{byte:02x} "
            f"at offset {error.start}), so none of its entry points were read, and "
            f"importlib.metadata fails on it for every package that looks up entry points. "
            f"Reinstall or uninstall the distribution."
        ),
    )


def undecodable_hint(error: BaseException) -> str:
    """A sentence naming the unreadable entry_points.txt files, if ``error`` may be theirs.

    ``importlib.metadata`` decodes every distribution's entry_points.txt strictly,
    so one file that is not UTF-8 makes any package's entry-point lookup raise
    ``UnicodeDecodeError`` (importing torch, for one), far from the file. Empty
    unless ``error`` or an exception behind it is a ``UnicodeDecodeError`` and
    this process's scan found such files.
    """
    scan = _scan
    if scan is None or not scan.faults:
        return ""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, UnicodeDecodeError):
            files = ", ".join(fault.file for fault in scan.faults)
            return (
                f" It is likely caused by {files}: not UTF-8, so importlib.metadata fails on it "
                f"for every package that looks up entry points; reinstall or uninstall its "
                f"distribution."
            )
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return ""


def shadowed_distributions() -> list[tuple[str, str, str]]:
    """``(distribution, used, ignored)`` metadata folders of each plugin distribution seen twice.

    The scan keeps the first copy of a distribution on ``sys.path`` and ignores
    the others; that is right, but a user who upgraded one copy deserves to
    know. Only distributions declaring ``codex_ml.*`` entry points count. This
    walks ``sys.path`` again, so only ``codex-ml plugins doctor`` calls it.
    """
    first: dict[str, str] = {}
    found = []
    for path in dict.fromkeys(_search_paths()):
        for dirname in _metadata_dirs(path):
            meta_dir = os.path.join(path, dirname)
            name = normalize_distribution_name(_name_from_dir(dirname))
            used = first.setdefault(name, meta_dir)
            if (
                used != meta_dir
                and os.path.realpath(used) != os.path.realpath(meta_dir)
                and (_declares_plugins(used) or _declares_plugins(meta_dir))
            ):
                found.append((name, used, meta_dir))
    return found


def _declares_plugins(meta_dir: str) -> bool:
    try:
        with open(
            os.path.join(meta_dir, "entry_points.txt"), encoding="utf-8", errors="replace"
        ) as fh:
            return bool(parse_entry_points(fh.read()))
    except OSError:
        return False


def _scan_archive(path: str, seen: set[str], records: list[EntryPointRecord]) -> None:
    """Zip archives on sys.path (rare) go through importlib.metadata itself."""
    from importlib.metadata import distributions

    for dist in distributions(path=[path]):
        name = dist.metadata["Name"] or ""
        normalized = normalize_distribution_name(name)
        if not name or normalized in seen:
            continue
        seen.add(normalized)
        for ep in dist.entry_points:
            if ep.group.startswith(GROUP_PREFIX):
                records.append(
                    EntryPointRecord(
                        ep.group, ep.name, object_reference(ep.value), name, dist.version, path
                    )
                )


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _build(paths: list[str]) -> tuple[Scan, dict[str, int]]:
    seen: set[str] = set()
    records: list[EntryPointRecord] = []
    watched: dict[str, int] = {}
    faults: list[ScanFault] = []
    for path in paths:
        watched[path] = _mtime_ns(path)
        if os.path.isdir(path):
            _scan_directory(path, seen, records, watched, faults)
        elif os.path.isfile(path):
            _scan_archive(path, seen, records)
    return Scan(tuple(records), faults=tuple(faults)), watched


# -- the persistent index -----------------------------------------------------------------------


def _index_enabled() -> bool:
    return os.environ.get("CODEX_ML_DISCOVERY_CACHE", "1").strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
    )


def _index_identity(paths: list[str]) -> str:
    return "\0".join([str(_INDEX_FORMAT), sys.executable, sys.version, *paths])


def _index_path(identity: str) -> str:
    import zlib

    digest = zlib.crc32(identity.encode("utf-8", "surrogateescape"))
    return os.path.join(cache_folder(), f"discovery-{digest:08x}.marshal")


def _read_index(path: str, identity: str) -> Scan | None:
    # marshal, not JSON: it is built in, so reading the index imports nothing (json
    # brings re: ~5 ms of every listing process), and it parses several times faster.
    # Like a .pyc file, the index is trusted as far as its folder is: it is written
    # only by codex-ml, whole. The checksum keeps a damaged file away from marshal, which
    # would believe a length field (5 bytes can claim a 2**31-item tuple: MemoryError).
    data = _read_regular_file(path, _INDEX_MAX_BYTES)
    if data is None or not data.startswith(_INDEX_MAGIC):
        return None
    import zlib

    payload = memoryview(data)[len(_INDEX_MAGIC) + 4 :]
    if int.from_bytes(data[len(_INDEX_MAGIC) : len(_INDEX_MAGIC) + 4], "big") != zlib.crc32(
        payload
    ):
        return None
    try:
        stored_identity, watched, entries, faults = marshal.loads(payload)
        if stored_identity != identity:
            return None
        for watched_path, mtime in watched:
            if _mtime_ns(watched_path) != mtime:
                return None
        records = tuple(map(EntryPointRecord._make, entries))
        faults = tuple(ScanFault(*map(str, fault)) for fault in faults)
    except (ValueError, EOFError, TypeError, MemoryError):
        return None  # a stale or damaged index is simply rebuilt
    return Scan(records, from_index=True, faults=faults)


def _read_regular_file(path: str, limit: int) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (not a link) of at most ``limit`` bytes.

    Opened without blocking, so a FIFO put in its place cannot hang the caller.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        chunks = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, max(info.st_size - size, 0) + 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks) if size <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _write_index(path: str, identity: str, scan: Scan, watched: dict[str, int]) -> None:
    import time
    import zlib

    newest_allowed = time.time_ns() - int(_RACY_SECONDS * 1e9)
    if any(mtime > newest_allowed for mtime in watched.values()):
        return  # something changed moments ago; a later process will persist it
    data = (
        identity,
        tuple(sorted(watched.items())),
        tuple(map(tuple, scan.entries)),
        tuple(map(tuple, scan.faults)),
    )
    payload = marshal.dumps(data)
    header = _INDEX_MAGIC + zlib.crc32(payload).to_bytes(4, "big")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError:
        return  # a read-only cache dir only costs speed, never correctness
    # A fresh name, created exclusively: a file or symlink planted at it is never written
    # through. The rename replaces whatever is at ``path`` (a symlink itself, not its target).
    from codex_ml import atomicfile

    try:
        with atomicfile.replacing(path, "wb") as fh:
            fh.write(header)
            fh.write(payload)
    except OSError:
        return


def _load_or_build() -> Scan:
    paths = _search_paths()
    if not _index_enabled():
        return _build(paths)[0]
    identity = _index_identity(paths)
    index = _index_path(identity)
    scan = _read_index(index, identity)
    if scan is None:
        scan, watched = _build(paths)
        _write_index(index, identity, scan, watched)
    return scan
