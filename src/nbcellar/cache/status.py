"""What ``nbcellar run`` would do with each cell, found without running anything.

The run is simulated from a fresh kernel: cells are keyed in order as the kernel would key them,
each found entry standing for the values its cell wrote, each miss giving its writes a new
version, so a change is followed down to every cell it reaches.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nbcellar.analysis import FunctionInfo, analyze_cell
from nbcellar.cache.entries import AMBIENT, KIND, CacheEntry
from nbcellar.cache.files import changed_file, shown
from nbcellar.cache.inputs import Directives, input_names, key_inputs, uncacheable
from nbcellar.cache.keys import CellKey, KeyInputs
from nbcellar.cache.recording import LATEST, STATE_AFTER, VALUES_AFTER, unstored_key
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
    for index, cell in enumerate(nb.code_cells):
        analysis = analyze_cell(cell.source)
        directives = Directives.of_cell(cell.source, cell.tags)
        why_not = uncacheable(analysis, directives, cell.source)
        if why_not:
            predictions.append(CellPrediction(index, "always runs", why_not))
            reads = {n: versions.get(n, ABSENT) for n in sorted(input_names(analysis, functions))}
            made = _values_after(store, unstored_key(analysis.code_hash, reads))
            for name in analysis.writes:
                versions[name] = made.get(name) or Version.predicted(f"cell {index}")
            effect = store.get_record(STATE_AFTER, analysis.code_hash)
            if effect is not None:  # (the kernel state it left when it last ran)
                ambient = dict(json.loads(effect.payload))
            continue
        # What a kernel reads through the code inside values (see nbcellar.cache.reach)
        # is known from the cell's last run.
        last = _latest(store, analysis.code_hash)
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
        changed = _changed_file(entry, rewritten) if entry is not None else ""
        if entry is not None and not directives.refresh and not changed:
            predictions.append(CellPrediction(index, "restore", "unchanged"))
            for name in (*entry.written, *entry.mutated):
                versions[name] = _version_after(entry, name)
            ambient = dict(entry.ambient_after)
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
                versions[name] = made.get(name) or Version.predicted(inputs.key())
            if last is not None:  # what it changed then is unknown until it runs
                ambient.update({n: f"predicted {inputs.key()}" for n in last.ambient})
        for name in analysis.deleted:
            versions.pop(name, None)
        functions.update(analysis.functions)
    return predictions


def _values_after(store: Any, known_by: str) -> dict[str, Version]:
    """The versions a cell run and not stored gave what it wrote (see VALUES_AFTER)."""
    record = store.get_record(VALUES_AFTER, known_by)
    if record is None:
        return {}
    return {n: Version.from_json(v) for n, v in json.loads(record.payload).items()}


def _changed_file(entry: CacheEntry, rewritten: set[str]) -> str:
    """Why the files the entry's cell opened are not as a restore needs them: changed now, or
    written anew by a cell above that runs."""
    for path in entry.touched:
        if path in rewritten:
            what = "a file it wrote" if path in entry.wrote else "a file it read"
            return f"{what} is written again by a cell above: {shown(path)}"
    return changed_file(entry.touched, entry.wrote)


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
    if entry is not None and entry.inputs.without_aliases() == inputs:
        return entry
    return None
