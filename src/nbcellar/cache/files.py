"""The files a running cell reads, lists and writes, seen through Python's audit events.

A cell that reads ``data.csv`` without a ``depends:`` tag made its values from that file: its
entry is right only while the file is as the cell read it. A cell that writes ``numbers.txt``
left that file behind: restoring it (which writes nothing) is right only while the file is as
the cell left it. So an entry keeps, for each file its cell opened, the version (size and
modification time) the file must have for a restore to be right, and a lookup checks them (see
:meth:`FileAccess.expected` and :func:`changed_file`): an edited data file, or a file rewritten
by a cell above that ran again, makes the cell run again.

A cell that changes a file in place (appends to it, or rewrites a file it read) does something
else each time it runs: it is never restored (:attr:`FileAccess.in_place`).

Python raises an audit event for every ``open()`` (``io.open``, ``os.open``, ``pathlib``,
pandas' and numpy's readers and writers), directory listing (``os.scandir``, ``glob``), file
removal and rename; the hook is installed once per process and does nothing while no cell
runs. Files read by C code without Python's ``open`` (pyarrow's Parquet reader, HDF5) are not
seen: a ``depends:PATH`` tag names those. Library, configuration and cache folders (the Python
installation, ``~/.cache``, ``~/.ipython``, nbcellar's store, a pipeline's manifests) are not
the notebook's data.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from nbcellar.cache.sources import file_version

# What the notebook's own data is not: module files (versioned as modules) ...
_CODE_SUFFIXES = (".py", ".pyc", ".pyi", ".pyd", ".so", ".pth")
# ... and the system's and tools' folders (configuration, caches, the kernel's connection file).
_SYSTEM_FOLDERS = ("/dev/", "/proc/", "/sys/", "/etc/", "/usr/", "/lib/", "/lib64/", "/run/")
_PIPELINE_FOLDER = "/.nbcellar-build/"  # (nbcellar.pipeline.manifests.FOLDER)
_HOME_FOLDERS = (".cache", ".config", ".ipython", ".jupyter", ".local", ".matplotlib", ".keras")


def _default_ignored() -> list[str]:
    import site

    folders = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    try:
        folders.update(site.getsitepackages())
        folders.add(site.getusersitepackages())
    except AttributeError:  # a virtualenv's site module may lack them
        pass
    home = os.path.expanduser("~")
    if home != "~":
        folders.update(os.path.join(home, name) for name in _HOME_FOLDERS)
    for variable in ("IPYTHONDIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "MPLCONFIGDIR"):
        if os.environ.get(variable):
            folders.add(os.environ[variable])
    return [os.path.join(os.path.abspath(f), "") for f in folders if f]


@dataclass
class FileAccess:
    """What one cell did to files (absolute paths)."""

    read: dict[str, str] = field(default_factory=dict)  # path -> version when first read
    listed: dict[str, str] = field(default_factory=dict)  # folder -> version when listed
    written: set[str] = field(default_factory=set)  # created, truncated, removed or renamed
    in_place: dict[str, str] = field(default_factory=dict)  # path -> how (appended to, ...)

    def expected(self) -> dict[str, str]:
        """The version each file must have for a restore of the cell to be right: the files
        it read and the folders it listed as it found them, those it wrote as it left them."""
        found = {p: v for p, v in self.read.items() if p not in self.written}
        found.update({p: v for p, v in self.listed.items() if p not in self.written})
        found.update({p: written_version(p) for p in self.written})
        return dict(sorted(found.items()))

    @property
    def why_always(self) -> str:
        """Why the cell must run every time (empty when it need not)."""
        if not self.in_place:
            return ""
        path, how = next(iter(sorted(self.in_place.items())))
        more = f" (and {len(self.in_place) - 1} more files)" if len(self.in_place) > 1 else ""
        return how.format(shown(path)) + more + ": running it again changes the file again"


def written_version(path: str) -> str:
    """The version of what a cell wrote at ``path``: a folder it made only has to be there (the
    files put in it later change its modification time, not what the cell did)."""
    return "folder" if os.path.isdir(path) else file_version(path, Path("/"))


def shown(path: str) -> str:
    """A path as a user names it: relative to the working directory when under it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def changed_file(expected: Mapping[str, str], written: Iterable[str] = ()) -> str:
    """Why an entry's files are not as it needs them (empty when they all are)."""
    wrote = set(written)
    for path, version in expected.items():
        now = written_version(path) if path in wrote else file_version(path, Path("/"))
        if now != version:
            what = "a file it wrote" if path in wrote else "a file it read"
            return f"{what} changed: {shown(path)}"
    return ""


class FileWatch:
    """Collects :class:`FileAccess` between :meth:`start` and :meth:`stop`, for the thread of
    the running cell and the threads it starts meanwhile."""

    _installed = False
    _active: FileWatch | None = None

    def __init__(self, ignored: Iterable[str | os.PathLike[str]] = ()) -> None:
        self.extra = [os.path.join(os.path.abspath(os.fspath(p)), "") for p in ignored]
        self.ignored: tuple[str, ...] = ()
        self.access = FileAccess()
        self.lock = threading.Lock()

    def start(self, also_ignored: Iterable[str | os.PathLike[str]] = ()) -> None:
        if not self.ignored:
            self.ignored = tuple(sorted(set(_default_ignored() + self.extra)))
        extra = tuple(os.path.join(os.path.abspath(os.fspath(p)), "") for p in also_ignored)
        self.now_ignored = self.ignored + extra
        self.access = FileAccess()
        if not FileWatch._installed:
            sys.addaudithook(_hook)
            FileWatch._installed = True
        FileWatch._active = self

    def stop(self) -> FileAccess:
        if FileWatch._active is self:
            FileWatch._active = None
        access = self.access
        if access.written:  # a log file is logging's state (see nbcellar.cache.providers)
            for path in _log_files() & access.written:
                access.written.discard(path)
                access.in_place.pop(path, None)
        return access

    # -- events --------------------------------------------------------------------------------

    def _path(self, raw: Any) -> str | None:
        if isinstance(raw, int) or raw is None:
            return None  # a file descriptor: opened before, and seen then
        try:
            path = os.path.abspath(os.fsdecode(raw))
        except (TypeError, ValueError):
            return None
        if path.endswith(_CODE_SUFFIXES) or "/__pycache__/" in path:
            return None
        if _PIPELINE_FOLDER in path:  # (a pipeline's manifests: read by upstream(), which
            return None  # keys the cell on what they say, not on the file's bytes)
        if path.startswith(_SYSTEM_FOLDERS) or path.startswith(self.now_ignored):
            return None
        if path + "/" in self.now_ignored:
            return None
        return path

    def opened(self, raw: Any, mode: Any, flags: int) -> None:
        path = self._path(raw)
        if path is None:
            return
        if isinstance(mode, str):
            writes = any(c in mode for c in "wxa+")
            appends = "a" in mode or ("+" in mode and "w" not in mode)
            truncates = "w" in mode or "x" in mode
        else:  # os.open: the flags say
            writes = bool(flags & (os.O_WRONLY | os.O_RDWR))
            appends = bool(flags & os.O_APPEND)
            truncates = bool(flags & os.O_TRUNC) or bool(flags & os.O_EXCL)
        access = self.access
        with self.lock:
            if not writes:
                if path not in access.written and path not in access.read:
                    access.read[path] = file_version(path, Path("/"))
                return
            if path in access.written:
                return  # its own file, made earlier in the cell
            if appends and not truncates and os.path.exists(path):
                access.in_place.setdefault(path, "appends to {}")
            elif path in access.read:
                access.in_place.setdefault(path, "rewrites {}, which it read")
            access.written.add(path)

    def listed(self, raw: Any) -> None:
        if _by_the_import_system():
            return  # (finding modules lists the folders on sys.path: not the notebook's data)
        path = self._path("." if raw is None else raw)
        if path is None:
            return
        with self.lock:
            if path not in self.access.listed and path not in self.access.written:
                self.access.listed[path] = file_version(path, Path("/"))

    def wrote(self, *raws: Any) -> None:
        for raw in raws:
            path = self._path(raw)
            if path is not None:
                with self.lock:
                    self.access.written.add(path)


# Standard library modules a notebook lists folders through (their callers decide).
_WRAPPERS = frozenset({"glob.py", "pathlib.py", "os.py", "shutil.py", "fnmatch.py"})


def _by_the_import_system() -> bool:
    """Whether a listing comes from library code (importlib finding modules or metadata on
    sys.path), not from the notebook's cells or the project's modules."""
    from nbcellar.cache.sources import is_project_file

    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith("<frozen"):
            return True
        if name == __file__ or os.path.basename(name) in _WRAPPERS:
            frame = frame.f_back
            continue
        return not (name.startswith("<") or is_project_file(name))
    return False


def _log_files() -> set[str]:
    """The files logging's handlers write to."""
    logging = sys.modules.get("logging")
    found: set[str] = set()
    for ref in list(getattr(logging, "_handlerList", ())):
        name = getattr(ref(), "baseFilename", None)
        if isinstance(name, str):
            found.add(os.path.abspath(name))
    return found


_EVENTS = frozenset({
    "open", "os.scandir", "os.listdir", "os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree",
    "os.truncate", "os.rename", "shutil.move", "os.link", "os.symlink",
})  # fmt: skip


def _hook(event: str, args: tuple[Any, ...]) -> None:
    # (Called for every audited call of the process, ``id()`` included: keep the rest away.)
    if event not in _EVENTS:
        return
    watch = FileWatch._active
    if watch is None:
        return
    try:
        if event == "open":
            watch.opened(args[0], args[1], args[2] if len(args) > 2 else 0)
        elif event in ("os.scandir", "os.listdir"):
            watch.listed(args[0])
        elif event in ("os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.truncate"):
            watch.wrote(args[0])
        elif event in ("os.rename", "shutil.move", "os.link", "os.symlink"):
            watch.wrote(args[0], args[1])
    except Exception:  # never in the way of the cell's own code
        pass
