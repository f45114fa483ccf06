"""What ``nbcellar run`` would do with each cell, found without running anything.

The run is simulated from a fresh kernel: cells are keyed in order as the kernel would key them,
each found entry standing for the values its cell wrote, each miss giving its writes a new
version, so a change is followed down to every cell it reaches.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nbcellar.analysis import FunctionInfo, analyze_cell
from nbcellar.analysis.cell import made_from
from nbcellar.cache.entries import AMBIENT, KIND, CacheEntry
from nbcellar.cache.files import changed_file, shown
from nbcellar.cache.inputs import (
    Directives,
    imported_version,
    input_names,
    key_inputs,
    uncacheable,
)
from nbcellar.cache.keys import CellKey, KeyInputs
from nbcellar.cache.recording import (
    LATEST,
    REPLAYED,
    STATE_AFTER,
    VALUES_AFTER,
    unstored_key,
)
from nbcellar.cache.sources import is_source_version, module_version
from nbcellar.cache.versions import ABSENT, Version
from nbcellar.notebook.model import Notebook

Prediction = Literal["restore", "run", "always runs"]


@dataclass(frozen=True)
class CellPrediction:
    index: int
    action: Prediction
    reason: str


def predict(nb: Notebook, store: Any, project: Path, cwd: Path) -> list[CellPrediction]:
    """For each code cell: would it be restored or run, and why, in a kernel started in
    ``cwd`` (where relative ``depends:`` paths are found, and modules after ``project``)."""
    from nbcellar.cache.engine import CellCache

    planner = CellCache(store, project)
    versions: dict[str, Version] = {}
    ambient: dict[str, str] = {}  # the kernel state's versions, as the run would have them
    kernel = _SimulatedKernel(cwd)
    functions: dict[str, FunctionInfo] = {}
    predictions: list[CellPrediction] = []
    rewritten: set[str] = set()  # files the cells that run write (anew: their versions change)
    maybe_written: list[str] = []  # ... and the code of those never run as it is now
    # After a cell never run as it is now: the kernel state its text names (see _may_change).
    after_new: set[str] | None = None
    defined_in: dict[str, str] = {}  # the code of the cell defining each notebook function
    for index, cell in enumerate(nb.code_cells):
        analysis = analyze_cell(cell.source)
        directives = Directives.of_cell(cell.source, cell.tags)
        why_not = uncacheable(analysis, directives, cell.source)
        if why_not:
            predictions.append(CellPrediction(index, "always runs", why_not))
            reads = {n: versions.get(n, ABSENT) for n in sorted(input_names(analysis, functions))}
            made = _values_after(store, unstored_key(analysis.code_hash, reads))
            for name in analysis.writes:
                versions[name] = (
                    imported_version(analysis, name, project, kernel.cwd, kernel.path)
                    or made.get(name)
                    or Version.predicted(f"cell {index}")
                )
            effect = store.get_record(STATE_AFTER, analysis.code_hash)
            if effect is not None:  # (the kernel state it left when it last ran)
                ambient = dict(json.loads(effect.payload))
            continue
        # What a kernel reads through the code inside values (see nbcellar.cache.reach)
        # is known from the cell's last run.
        last = _latest(store, analysis.code_hash)
        if after_new is not None and last is not None:
            ambient = _as_last_run_found_it(planner, ambient, last, after_new)
        after_new = None
        inputs = key_inputs(
            analysis,
            directives,
            version_of=lambda name: versions.get(name, ABSENT),
            functions=functions,
            project=project,
            cwd=kernel.cwd,
            ambient=planner.ambient.key_versions(ambient),
            also=last.inputs.names if last is not None else (),
            also_modules=last.inputs.modules if last is not None else (),
            path=kernel.path,
        )
        entry = _find_entry(store, inputs, planner, ambient)
        changed = _changed_file(entry, rewritten, maybe_written) if entry is not None else ""
        if entry is not None and not directives.refresh and not changed:
            predictions.append(CellPrediction(index, "restore", "unchanged"))
            anew = _made_anew(store, entry, cell.source)
            for name in (*entry.written, *entry.mutated):
                versions[name] = imported_version(
                    analysis, name, project, kernel.cwd, kernel.path
                ) or (Version.predicted(f"{entry.key} again") if name in anew
                      else _version_after(entry, name))  # fmt: skip
            # The kernel state as the restored cell left it, but what a cell above that runs
            # may have changed (and the restored cell did not set) stays unknown.
            unknown = {
                n: v
                for n, v in ambient.items()
                if v.startswith("predicted") and n not in {*entry.ambient, *entry.drawn}
            }
            ambient = {**entry.ambient_after, **unknown}
            kernel.follow(store, entry)
        else:
            reason = "tagged refresh" if directives.refresh else planner.why_missed(inputs)
            predictions.append(CellPrediction(index, "run", changed or reason))
            known = entry if entry is not None else last
            if known is not None:
                rewritten.update(known.wrote)
            # (A cell run and not stored before with these inputs: as it made them then.)
            made = _values_after(store, inputs.key()) if entry is None else {}
            for name in analysis.writes | analysis.mutated:
                versions[name] = (
                    imported_version(analysis, name, project, kernel.cwd, kernel.path)
                    or made.get(name)
                    or Version.predicted(inputs.key())
                )
            if last is not None:  # what it changed then is unknown until it runs
                ambient.update({n: f"predicted {inputs.key()}" for n in last.ambient})
                # (and what it changed in place without naming it: a list a module keeps)
                for name in set(last.mutated) - set(analysis.deleted):
                    versions[name] = Version.predicted(inputs.key())
            else:  # new code: what its text names it may change
                maybe_written.append(cell.source)
                # (with the code of the notebook functions it calls)
                text = [defined_in[f] for f in analysis.calls if f in defined_in]
                after_new = set(
                    _may_change(
                        "\n".join([cell.source, *text]),
                        analysis,
                        planner.ambient.providers,
                        project,
                        kernel.cwd,
                    )
                )
                ambient.update({n: f"predicted {inputs.key()}" for n in after_new})
        for name in analysis.deleted:
            versions.pop(name, None)
        functions.update(analysis.functions)
        defined_in.update(dict.fromkeys(analysis.functions, cell.source))
    return predictions


_ATTRIBUTE_SET = r"^\s*[A-Za-z_]\w*(\.\w+)+\s*([-+*/|&]|//)?=(?!=)|setattr|delattr"
_MAY_CHANGE = {
    "cwd": r"\bchdir\b|%cd\b",
    "environ": r"\benviron\b|%env\b|%set_env\b|\bputenv\b|dotenv",
    "sys.path": r"sys\.path|%cd\b",
    "modules": r"\bimport\b|__import__|sys\.modules",
    "random": r"\brandom\b",
    "numpy.random": r"\brandom\b",
    "warnings": r"\bwarnings\b|filterwarnings|simplefilter",
    "logging": r"\blogging\b|basicConfig",
    "pandas": r"set_option|reset_option|\.options\.",
    "numpy": r"set_printoptions|seterr|printoptions",
    "matplotlib": r"rcParams|\brc\(|style\.use|set_theme|\bsns\.set",
    "matplotlib backend": r"\.use\(|switch_backend|\bbackend\b",
    "project": _ATTRIBUTE_SET + r"|\breload\b|%autoreload",
    "patches": _ATTRIBUTE_SET + r"|sys\.modules|register_\w*accessor|copyreg|\.pandas\(",
    "sys.settings": (
        r"setrecursionlimit|setswitchinterval|set_int_max_str_digits|setdefaulttimeout"
        r"|field_size_limit|faulthandler"
    ),
    "umask": r"\bumask\b",
    "locale": r"setlocale",
    "timezone": r"tzset",
    "decimal": r"decimal|[gs]etcontext|localcontext",
    "builtins": r"builtins",
    "atexit": r"atexit",
    "ipython": r"%config|\bconfig\b|run_line_magic|InlineBackend|interactivity|%precision|%pprint",
    "gc": r"\bgc\.",
    "figure formats": r"set_matplotlib_formats|figure_format|InlineBackend",
    "signals": r"\bsignal\b",
}
"""What a cell never run as it is now may change of the kernel state, by provider (see
nbcellar.cache.providers), as its text says; a provider not named here, anything."""


def _as_last_run_found_it(
    planner: Any, ambient: dict[str, str], last: CacheEntry, named: set[str]
) -> dict[str, str]:
    """The kernel state after a cell never run as it is now, as the last run of the next cell
    found it (an edited cell importing libraries still imports them: their side effects on
    warnings filters or the environment are what they were), but for what its text names."""
    keyed = set(planner.ambient.key_versions({p.name: "" for p in planner.ambient.providers}))
    found = {n: v for n, v in ambient.items() if n not in keyed or n in named}
    found.update({n: v for n, v in last.inputs.ambient.items() if n not in named})
    return found


def _may_change(
    source: str, analysis: Any, providers: Sequence[Any], project: Path, cwd: Path
) -> list[str]:
    found = []
    for provider in providers:
        pattern = _MAY_CHANGE.get(provider.name)
        named = pattern is None or re.search(pattern, source, re.M) is not None
        if not named and provider.name == "project":  # (what its code does may change them)
            named = any(
                is_source_version(module_version(m, project, cwd)) for m in analysis.imports
            )
        if named:
            found.append(provider.name)
    return found


def _values_after(store: Any, known_by: str) -> dict[str, Version]:
    """The versions a cell run and not stored gave what it wrote (see VALUES_AFTER)."""
    record = store.get_record(VALUES_AFTER, known_by)
    if record is None:
        return {}
    found = {n: Version.from_json(v) for n, v in json.loads(record.payload).items()}
    # (An object known by its identity is another one in the next kernel.)
    return {n: v for n, v in found.items() if v.kind != "object"}


_WRITES = re.compile(
    r"""['"][wax]b?\+?['"]|mode=|\.to_[a-z]+\(|\bsave|dump|write|remove|unlink|rename|"""
    r"""replace\(|savefig|mkdir|makedirs|rmtree|copy"""
)


def _changed_file(entry: CacheEntry, rewritten: set[str], new_code: Sequence[str] = ()) -> str:
    """Why the files the entry's cell opened are not as a restore needs them: changed now, or
    written anew by a cell above that runs (as it did, or, for code never run as it is now,
    as its text says: it names the file and writes)."""
    writers = [code for code in new_code if _WRITES.search(code)]
    for path in entry.touched:
        name = os.path.basename(path)
        if path in rewritten or any(name in code for code in writers):
            what = "a file it wrote" if path in entry.wrote else "a file it read"
            return f"{what} is written again by a cell above: {shown(path)}"
    return changed_file(entry.touched, entry.wrote)


def _made_anew(store: Any, entry: CacheEntry, source: str) -> frozenset[str]:
    """Of the values of a cell its restore runs again (for what it could not store), those
    the run makes anew: as the last such run found, or, before one, those its code makes from
    what it could not store (a path in a ``TemporaryDirectory``, not an unrelated table)."""
    if not entry.unserializable:
        return frozenset()
    record = store.get_record(REPLAYED, entry.key)
    if record is not None:
        return frozenset(n for n, anew in json.loads(record.payload).items() if anew)
    return made_from(source, entry.unserializable)


def _version_after(entry: CacheEntry, name: str) -> Version:
    """The version a restore gives ``name`` (a cell run again for what it could not store is
    taken to make its values as it made them then, as the kernel takes it)."""
    return entry.version(name)


class _SimulatedKernel:
    """The working directory and import path a kernel would have, as the restored cells
    change them (the modules a cell imports are found as that kernel finds them)."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.path: list[str] | None = None

    def follow(self, store: Any, entry: CacheEntry) -> None:
        if not ({"cwd", "sys.path"} & set(entry.ambient)) or entry.snapshot_id is None:
            return
        restored = store.restore(entry.snapshot_id, [AMBIENT])
        changes: Any = restored.values.get(AMBIENT, {})
        if "cwd" in changes:
            self.cwd = (self.cwd / str(changes["cwd"])).resolve()
        if "sys.path" in changes:
            front, back, removed = changes["sys.path"]
            path = [p for p in (self.path or sys.path) if p not in removed]
            found = [str((self.cwd / p).resolve()) if not os.path.isabs(p) else p
                     for p in (*front, *back)]  # fmt: skip
            self.path = [*found[: len(front)], *path, *found[len(front) :]]


def _latest(store: Any, code_hash: str) -> CacheEntry | None:
    """The entry of the last run of a cell's code, whatever its inputs were."""
    latest = store.get_record(LATEST, code_hash)
    if latest is None:
        return None
    record = store.get_record(KIND, latest.payload.decode())
    if record is None:
        return None
    return CacheEntry.from_bytes(record.key, record.snapshot_id, record.payload)


def _find_entry(
    store: Any, inputs: KeyInputs, planner: Any, ambient: dict[str, str]
) -> CacheEntry | None:
    exact = planner.find(CellKey(inputs.key()), ambient)
    if exact is not None:
        return exact  # type: ignore[no-any-return]
    entry = _latest(store, inputs.code_hash)
    # The kernel also notes which names share a mutated object; nothing here can see that.
    if entry is None or entry.inputs.without_aliases() != inputs:
        return None
    # (Kept for the states its generators had: only where they have them now.)
    drawn = planner.ambient.drawn_versions(entry.drawn, ambient)
    return entry if drawn == dict(entry.drawn) else None
