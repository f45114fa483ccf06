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
from nbcellar.cache.inputs import Directives, key_inputs, uncacheable
from nbcellar.cache.keys import CellKey, KeyInputs
from nbcellar.cache.recording import LATEST, STATE_AFTER
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
    for index, cell in enumerate(nb.code_cells):
        analysis = analyze_cell(cell.source)
        directives = Directives.of_cell(cell.source, cell.tags)
        why_not = uncacheable(analysis, directives, cell.source)
        if why_not:
            predictions.append(CellPrediction(index, "always runs", why_not))
            for name in analysis.writes:
                versions[name] = Version.predicted(f"cell {index}")
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
        if entry is not None and not directives.refresh:
            predictions.append(CellPrediction(index, "restore", "unchanged"))
            for name in (*entry.written, *entry.mutated):
                versions[name] = _version_after(entry, name)
            ambient = dict(entry.ambient_after)
            kernel.follow(store, entry)
        else:
            reason = "tagged refresh" if directives.refresh else planner.why_missed(inputs)
            predictions.append(CellPrediction(index, "run", reason))
            for name in analysis.writes | analysis.mutated:
                versions[name] = Version.predicted(inputs.key())
            if last is not None:  # what it changed then is unknown until it runs
                ambient.update({n: f"predicted {inputs.key()}" for n in last.ambient})
                # (and what it changed in place without naming it: a list a module keeps)
                for name in set(last.mutated) - set(analysis.deleted):
                    versions[name] = Version.predicted(inputs.key())
        for name in analysis.deleted:
            versions.pop(name, None)
        functions.update(analysis.functions)
    return predictions


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
