"""What a cell's key is made of, computed in one place for every caller.

A kernel keys a cell on the live versions of what it reads; ``nbcellar status`` on the versions
a simulated run would have; the notebook-level shortcut checks that what the cells read from
outside the namespace (modules, files) is as it was. All three go through :func:`key_inputs`
and :func:`outside_inputs`, so they cannot disagree on what a key holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nbcellar.analysis import CellAnalysis, FunctionInfo
from nbcellar.analysis.graph import reads_through_calls
from nbcellar.cache.keys import KeyInputs
from nbcellar.cache.sources import ABSENT as MODULE_ABSENT
from nbcellar.cache.sources import file_version, is_source_version, module_version
from nbcellar.cache.versions import Version

# Magics that only read or time code; any other magic or shell command may change the kernel or
# the disk in ways a restore would not reproduce, so its cell always runs.
PURE_MAGICS = frozenset(
    {"time", "timeit", "prun", "capture", "pinfo", "pinfo2", "pdef", "pdoc", "psource", "pfile",
     "who", "whos", "who_ls"}
)  # fmt: skip

# Names IPython keeps for itself: never saved, never versioned; reading them disables caching.
_IPYTHON_NAME = re.compile(r"^(_+|_i+|_i?\d+|_[ido]h|In|Out|exit|quit|get_ipython|_exit_code)$")


def is_ipython_name(name: str) -> bool:
    return bool(_IPYTHON_NAME.match(name)) or (name.startswith("__") and name.endswith("__"))


_DIRECTIVE = re.compile(r"^\s*#\s*nbcellar:\s*(.+?)\s*$", re.MULTILINE)


def directives_in(source: str) -> list[str]:
    """Tags written as ``# nbcellar: nocache depends:data.csv`` comments in the cell."""
    return [tag for line in _DIRECTIVE.findall(source) for tag in re.split(r"[\s,]+", line) if tag]


@dataclass(frozen=True)
class Directives:
    """Per-cell options, from cell tags (``nocache``, ``refresh``, ``depends:PATH``)."""

    nocache: bool = False
    refresh: bool = False
    depends: tuple[str, ...] = ()
    depends_content: tuple[str, ...] = ()

    @classmethod
    def from_tags(cls, tags: Iterable[str]) -> Directives:
        tags = list(tags)
        return cls(
            nocache="nocache" in tags,
            refresh="refresh" in tags,
            depends=tuple(t[len("depends:") :] for t in tags if t.startswith("depends:")),
            depends_content=tuple(
                t[len("depends-content:") :] for t in tags if t.startswith("depends-content:")
            ),
        )

    @classmethod
    def of_cell(cls, source: str, tags: Iterable[str]) -> Directives:
        """From the cell's tags and its ``# nbcellar:`` comments."""
        return cls.from_tags([*tags, *directives_in(source)])


def uncacheable(analysis: CellAnalysis, directives: Directives, source: str) -> str:
    """Why the cell must always run (empty when it may be cached)."""
    if not source.strip():
        return "empty"
    if analysis.syntax_error:
        return "syntax error"
    if directives.nocache:
        return "tagged nocache"
    if analysis.reads_unknown:
        return "reads names nbcellar cannot see (eval, exec, globals(), %run -i)"
    if analysis.upstream_unknown:
        return "calls upstream() with a task name that is not written out (a string literal)"
    volatile = sorted(n for n in analysis.reads if is_ipython_name(n))
    if volatile:
        return f"reads IPython's {', '.join(volatile)}"
    effects = sorted(analysis.magics - PURE_MAGICS)
    if effects:
        shown = ", ".join("shell command" if m == "!" else f"%{m}" for m in effects)
        return f"uses {shown}, whose effects a restore would not repeat"
    return ""


def input_names(analysis: CellAnalysis, functions: Mapping[str, FunctionInfo]) -> set[str]:
    """The variables a cell's key versions: what it reads or may change, and the globals the
    functions it calls read or change (transitively, through ``functions``)."""
    called, _, called_mutated = reads_through_calls(analysis, functions)
    names = set(analysis.reads | analysis.mutated | called | called_mutated)
    return {n for n in names if not is_ipython_name(n)}


def outside_inputs(
    analysis: CellAnalysis,
    directives: Directives,
    project: Path,
    cwd: Path,
    path: Sequence[str] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """The versions of the modules the cell imports, of the files its tags name and of what
    the pipeline tasks it reads with ``upstream()`` produced, as a kernel working in ``cwd``
    finds them (relative paths are found from there, as the cell's
    own ``open()`` calls are; modules in ``project`` first, then ``cwd``, then the import
    path: the kernel's, or ``path``)."""
    modules = {m: module_version(m, project, cwd, path) for m in sorted(analysis.imports)}
    files = {p: file_version(p, cwd) for p in directives.depends}
    files |= {
        f"content:{p}": file_version(p, cwd, content=True) for p in directives.depends_content
    }
    if analysis.upstreams:  # (what the pipeline tasks it reads produced: nbcellar.pipeline)
        from nbcellar.pipeline.manifests import upstream_version

        files |= {f"upstream:{t}": upstream_version(t, cwd) for t in sorted(analysis.upstreams)}
    return modules, files


def file_input_version(name: str, cwd: Path) -> str:
    """The version now of one of the ``files`` :func:`outside_inputs` gives, by its name there
    (``path``, ``content:path``, ``upstream:task``)."""
    kind, _, what = name.partition(":") if ":" in name else ("", "", name)
    if kind == "upstream":
        from nbcellar.pipeline.manifests import upstream_version

        return upstream_version(what, cwd)
    if kind == "content":
        return file_version(what, cwd, content=True)
    return file_version(name, cwd)


def key_inputs(
    analysis: CellAnalysis,
    directives: Directives,
    *,
    version_of: Callable[[str], Version],
    functions: Mapping[str, FunctionInfo],
    project: Path,
    cwd: Path,
    aliases: Mapping[str, tuple[str, ...]] | None = None,
    ambient: Mapping[str, str] | None = None,
    also: Iterable[str] = (),
    also_modules: Iterable[str] = (),
    path: Sequence[str] | None = None,
) -> KeyInputs:
    """The inputs of a cell's key: its code, the versions (``version_of``) of the variables
    it reads (see :func:`input_names`), which other names share the objects it may change
    (``aliases``: only a kernel sees those), the kernel state earlier cells changed
    (``ambient``), and the modules and files it reads (see :func:`outside_inputs`); ``also``
    and ``also_modules``: what it reads through the code inside the values it reads (see
    nbcellar.cache.reach), which only a kernel sees (a simulated run takes them from the
    entry of the cell's last run)."""
    wanted = input_names(analysis, functions) | {n for n in also if not is_ipython_name(n)}
    names = {n: version_of(n) for n in sorted(wanted)}
    modules, files = outside_inputs(analysis, directives, project, cwd, path)
    for module in sorted(set(also_modules) - set(modules)):
        modules[module] = module_version(module, project, cwd, path)
    modules = dict(sorted(modules.items()))
    return KeyInputs(
        analysis.code_hash,
        analysis.silent,
        names,
        {n: tuple(a) for n, a in sorted((aliases or {}).items()) if a},
        modules,
        files,
        dict(ambient or {}),
    )


def imported_version(
    analysis: CellAnalysis,
    name: str,
    project: Path,
    cwd: Path,
    path: Sequence[str] | None = None,
) -> Version | None:
    """The version of ``name`` after the cell, when only a top-level import of the cell binds
    it (see CellAnalysis.imported): what it imports, and the version of the module(s) it comes
    from (a project package's submodule ``from pkg import sub`` included)."""
    what = analysis.imported.get(name)
    if what is None or name in analysis.mutated:
        return None
    module, _, attr = what.rstrip("!").partition(":")
    versions = [module_version(module, project, cwd, path)]
    if versions[0] == MODULE_ABSENT:  # made by code (a module put in sys.modules): not known so
        return None
    if attr and is_source_version(versions[0]):
        versions.append(module_version(f"{module}.{attr}", project, cwd, path))
    return Version.imported(what, versions)
