"""What ``nbcellar run`` would do with each cell, found without running anything.

The run is simulated from a fresh kernel: cells are keyed in order as the kernel would key them,
each found entry standing for the values its cell wrote, each miss giving its writes a new
version, so a change is followed down to every cell it reaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nbcellar.analysis import FunctionInfo, analyze_cell
from nbcellar.cache.entries import KIND, CacheEntry
from nbcellar.cache.inputs import Directives, key_inputs, uncacheable
from nbcellar.cache.keys import CellKey, KeyInputs
from nbcellar.cache.recording import LATEST
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
            cwd=cwd,
            ambient=planner.ambient.key_versions(ambient),
            also=last.inputs.names if last is not None else (),
            also_modules=last.inputs.modules if last is not None else (),
        )
        entry = _find_entry(store, inputs, planner, ambient)
        if entry is not None and not directives.refresh:
            predictions.append(CellPrediction(index, "restore", "unchanged"))
            for name in (*entry.written, *entry.mutated):
                versions[name] = entry.version(name)
            ambient = dict(entry.ambient_after)
        else:
            reason = "tagged refresh" if directives.refresh else planner.why_missed(inputs)
            predictions.append(CellPrediction(index, "run", reason))
            for name in analysis.writes | analysis.mutated:
                versions[name] = Version.predicted(inputs.key())
            if last is not None:  # it will likely change the kernel state as it did then
                ambient = dict(last.ambient_after)
        for name in analysis.deleted:
            versions.pop(name, None)
        functions.update(analysis.functions)
    return predictions


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
