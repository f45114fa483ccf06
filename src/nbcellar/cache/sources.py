"""Versions of what a cell depends on outside the namespace: imported modules and data files.

A module of the user's own (a file outside the interpreter's libraries and installed packages) is
versioned by the hash of its source and of the user modules it imports in turn; any other module
by its distribution's version. Modules are located without being imported, so asking for a key
has no side effects. Files named in ``depends:PATH`` tags are versioned by size and modification
time, or by content for ``depends-content:PATH``.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.metadata
import os
import sys
import sysconfig
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

ABSENT = "absent"
"""The version of a module or file that is not there."""


@lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(sorted(os.path.realpath(r) for r in roots if r))


@lru_cache(maxsize=4096)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


@lru_cache(maxsize=16384)
def is_project_file(path: str) -> bool:
    """True for the user's own code: any module file outside the interpreter's libraries and
    installed packages (an editable install of the user's package counts as their code)."""
    folder, base = os.path.split(os.path.abspath(path))
    real = os.path.join(_real_folder(folder), base)  # (a package's modules share a folder)
    if os.path.islink(real):
        real = os.path.realpath(real)
    parts = real.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return not any(real.startswith(lib + os.sep) for lib in _library_roots())


def is_project_module(name: str) -> bool:
    """Whether a module may be the user's own code: False only for a module already imported
    from the interpreter's libraries or installed packages (found without a search)."""
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None) if module is not None else None
    if module is not None and origin is None:
        return False  # built in, or a namespace package: no source of its own
    return origin is None or is_project_file(origin)


def find_module_file(name: str, search: list[str]) -> str | None:
    """The file a module would be imported from, found without importing anything."""
    locations: list[str] | None = search
    origin: str | None = None
    for part in name.split("."):
        spec = importlib.machinery.PathFinder.find_spec(part, locations)
        if spec is None:
            return None
        origin = spec.origin if spec.has_location else None
        locations = list(spec.submodule_search_locations or [])
    return origin


@lru_cache(maxsize=4096)
def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    """(Read a MiB at a time into one buffer: a file of hundreds of MB hashes several times
    faster than read whole into memory first.)"""
    import xxhash

    digest = xxhash.xxh3_128()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    with open(path, "rb") as handle:
        while read := handle.readinto(buffer):
            digest.update(view[:read])
    return str(digest.hexdigest())


def file_hash(path: str) -> str:
    stat = os.stat(path)
    return _file_hash(path, stat.st_size, stat.st_mtime_ns)


def _is_nbcellar(name: str) -> bool:
    return name == "nbcellar" or name.startswith("nbcellar.")


def _imports_of(path: str, package: str) -> set[str]:
    try:
        stat = os.stat(path)
    except OSError:
        return set()
    return set(_parsed_imports(path, package, stat.st_size, stat.st_mtime_ns))


@lru_cache(maxsize=4096)
def _parsed_imports(path: str, package: str, size: int, mtime_ns: int) -> frozenset[str]:
    """The modules a file imports (cached while the file is unchanged)."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return frozenset()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                base = parts[: len(parts) - node.level + 1] if node.level > 1 else parts
                prefix = ".".join(base)
                module = f"{prefix}.{node.module}" if node.module else prefix
            else:
                module = node.module or ""
            if module:
                found.add(module)
                found.update(f"{module}.{alias.name}" for alias in node.names)
    return frozenset(found)


def _walk_imports(
    name: str, search: list[str], follow: Callable[[str], bool] = is_project_file
) -> dict[str, str | None]:
    """``name`` and the user modules it imports, transitively, with the file each comes from
    (None, or a library's file, for what is not the user's own: it is not followed; nor is
    a file for which ``follow`` says no)."""
    found: dict[str, str | None] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        if _is_nbcellar(current):
            found[current] = None
            continue
        origin = find_module_file(current, search)
        if origin is None or not os.path.isfile(origin):
            found[current] = None
            continue
        found[current] = origin
        if follow(origin):
            package = current if origin.endswith("__init__.py") else current.rpartition(".")[0]
            todo.extend(_imports_of(origin, package))
    return found


def project_sources(names: list[str], roots: list[Path]) -> dict[str, str]:
    """The modules among ``names`` whose files are under one of the ``roots`` folders, and
    those they import in turn from there: module name to source file (what a run record
    keeps of the code a notebook imported). Modules are searched in the roots first."""
    folders = [os.path.realpath(r) for r in roots]

    def inside(path: str) -> bool:
        real = os.path.realpath(path)
        return any(
            real.startswith(folder + os.sep) and is_user_code(real, folder) for folder in folders
        )

    search = [*map(str, roots), *sys.path]
    found: dict[str, str] = {}
    for name in names:
        if name.startswith("."):
            continue
        for module, origin in _walk_imports(name, search, inside).items():
            if origin is not None and inside(origin):
                found[module] = origin
    ignored = git_ignored(list(found.values()), folders)
    return {m: path for m, path in sorted(found.items()) if path not in ignored}


# Folders under a project that hold no code of the user's: environments, version control,
# caches, build output, installed packages.
NOT_SOURCE_FOLDERS = frozenset({
    ".git", ".hg", ".svn", "node_modules", "__pycache__", "site-packages", "dist-packages",
    "build", "dist", ".eggs", ".tox", ".nox", ".venv", ".conda", ".ipynb_checkpoints",
    ".nbcellar", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".cache",
})  # fmt: skip


def is_user_code(path: str, root: str) -> bool:
    """Whether the file ``path`` under the folder ``root`` is the user's own code: a project
    file (see is_project_file) in no folder of NOT_SOURCE_FOLDERS, no ``*.egg-info`` and no
    virtual or conda environment (a folder with ``pyvenv.cfg`` or ``conda-meta``), whatever
    its name."""
    if not is_project_file(path):
        return False
    parts = os.path.relpath(os.path.dirname(path), root).split(os.sep)
    if parts == ["."]:
        return True
    if any(p in NOT_SOURCE_FOLDERS or p.endswith(".egg-info") for p in parts):
        return False
    folder = root
    for part in parts:
        folder = os.path.join(folder, part)
        if _is_environment(folder):
            return False
    return True


@lru_cache(maxsize=4096)
def _is_environment(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "pyvenv.cfg")) or os.path.isdir(
        os.path.join(folder, "conda-meta")
    )


def git_ignored(paths: Sequence[str], roots: Sequence[str]) -> set[str]:
    """Those of ``paths`` that git ignores (``.gitignore``) in the repository holding each
    root; none outside a repository or without git."""
    import subprocess

    ignored: set[str] = set()
    for root in roots:
        under = [p for p in paths if p.startswith(root + os.sep) and p not in ignored]
        if not under:
            continue
        try:
            done = subprocess.run(
                ["git", "-C", root, "check-ignore", "--stdin", "-z"],
                input="\0".join(under) + "\0", capture_output=True, text=True, timeout=10,
                check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:  # (1: none ignored; 128: not a repository)
            ignored.update(p for p in done.stdout.split("\0") if p)
    return ignored


_LIBRARY_MODULES: dict[tuple[str, Path, Path | None, tuple[str, ...] | None], str] = {}


_SOURCE_MODULES: dict[tuple[object, ...], tuple[str, tuple[object, ...], tuple[str, ...]]] = {}


def _stamps(paths: Sequence[str]) -> tuple[object, ...]:
    """Size and modification time of each path (None for one that is not there)."""
    found: list[object] = []
    for each in paths:
        try:
            stat = os.stat(each)
        except OSError:
            found.append(None)
        else:
            found.append((stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def module_version(
    name: str, project: Path, cwd: Path | None = None, path: Sequence[str] | None = None
) -> str:
    """Source hash for a user module (with the user modules it imports), else a version.

    Modules are searched in ``project``, then ``cwd`` (a kernel's working directory, first on
    its path: give it when asking from outside the kernel), then this interpreter's path.
    """
    if name.startswith("."):
        return ABSENT
    if _is_nbcellar(name):  # the tool, not the user's code, even when installed editable
        from nbcellar import __version__

        return f"lib:nbcellar=={__version__}"
    where = tuple(path) if path is not None else None
    known = _LIBRARY_MODULES.get((name, project, cwd, where))
    if known is not None:  # installed libraries do not change while a kernel runs
        return known
    search = [str(project), *([str(cwd)] if cwd is not None else []), *(path or sys.path)]
    # A user module's version is asked for by every cell reading it: found again only when
    # one of its files, or the folders it is searched in first, changed since.
    cache_key = (name, project, cwd, tuple(search))
    cached = _SOURCE_MODULES.get(cache_key)
    if cached is not None and cached[1] == _stamps(cached[2]):
        return cached[0]
    seen: dict[str, str] = {}
    walked = _walk_imports(name, search)
    for current, origin in walked.items():
        if origin is None or not is_project_file(origin):
            seen[current] = "" if current != name else _library_version(current, origin)
        else:
            seen[current] = file_hash(origin)
    if seen[name] and not seen[name].startswith(("lib:", ABSENT)):
        parts = [f"{m}={h}" for m, h in sorted(seen.items()) if h]
        version = "src:" + ";".join(parts)
        watched = (*sorted({o for o in walked.values() if o}), *search[:2])
        _SOURCE_MODULES[cache_key] = (version, _stamps(watched), watched)
        return version
    if seen[name].startswith("lib:"):
        _LIBRARY_MODULES[name, project, cwd, where] = seen[name]
    return seen[name]


@lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


@lru_cache(maxsize=1024)
def _library_version(name: str, origin: str | None) -> str:
    if origin is None:
        return ABSENT if name.split(".")[0] not in sys.builtin_module_names else "lib:builtin"
    return _distribution_version(name.split(".")[0])


@lru_cache(maxsize=1024)
def _distribution_version(top: str) -> str:
    if top in sys.stdlib_module_names:  # no distribution to look for: the Python version says
        return f"lib:{top}@py{sys.version_info[0]}.{sys.version_info[1]}"
    try:
        return f"lib:{top}=={importlib.metadata.version(top)}"
    except importlib.metadata.PackageNotFoundError:
        pass
    # The import name differs from the distribution's (sklearn, scikit-learn): the one whose
    # installed files include the package. (Faster than the full packages_distributions().)
    for dist in importlib.metadata.distributions():
        files = dist.read_text("RECORD") or ""
        if files.startswith((f"{top}/", f"{top}.")) or f"\n{top}/" in files or f"\n{top}." in files:
            return f"lib:{dist.metadata['Name']}=={dist.version}"
    return f"lib:{top}@py{sys.version_info[0]}.{sys.version_info[1]}"


def is_source_version(version: str) -> bool:
    """Whether a module version is the hash of the user's own source (not a library's)."""
    return version.startswith("src:")


def file_version(path: str, base: Path, content: bool = False) -> str:
    """``size:mtime`` of a file a cell depends on (its content hash when asked), or absent."""
    target = Path(path) if os.path.isabs(path) else base / path
    try:
        stat = target.stat()
    except OSError:
        return ABSENT
    if content:
        return "content:" + file_hash(str(target))
    return f"stat:{stat.st_size}:{stat.st_mtime_ns}"
