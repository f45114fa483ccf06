"""What ``nbcellar run`` would do with each cell, found without running anything.

The run is simulated from a fresh kernel: cells are keyed in order as the kernel would key them,
each found entry standing for the values its cell wrote, each miss giving its writes a new
version, so a change is followed down to every cell it reaches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nbcellar.analysis import FunctionInfo, analyze_cell
from nbcellar.analysis.graph import reads_through_calls
from nbcellar.cache.engine import Directives, directives_in, is_ipython_name
from nbcellar.cache.entries import KIND, CacheEntry
from nbcellar.cache.keys import ABSENT, CellKey, KeyInputs
from nbcellar.cache.sources import file_version, module_version
from nbcellar.notebook.model import Notebook

Prediction = Literal["restore", "run", "always runs"]
_ALIAS_NOTE = re.compile(r"\|same object as .*$")


@dataclass(frozen=True)
class CellPrediction:
    index: int
    action: Prediction
    reason: str


def _without_aliases(inputs: KeyInputs) -> KeyInputs:
    names = {k: _ALIAS_NOTE.sub("", v) for k, v in inputs.names.items()}
    return KeyInputs(inputs.code_hash, inputs.silent, names, inputs.modules, inputs.files)


def predict(nb: Notebook, store: Any, project: Path, cwd: Path) -> list[CellPrediction]:
    """For each code cell: would it be restored or run, and why, in a kernel started in
    ``cwd`` (where relative ``depends:`` paths are found, and modules after ``project``)."""
    from nbcellar.cache.engine import CellCache

    planner = CellCache(store, project)
    versions: dict[str, str] = {}
    functions: dict[str, FunctionInfo] = {}
    predictions: list[CellPrediction] = []
    for index, cell in enumerate(nb.code_cells):
        analysis = analyze_cell(cell.source)
        tags = [*cell.tags, *directives_in(cell.source)]
        directives = Directives.from_tags(tags)
        why_not = planner.uncacheable(analysis, directives, cell.source)
        if why_not:
            predictions.append(CellPrediction(index, "always runs", why_not))
            for name in analysis.writes:
                versions[name] = f"unknown:{index}"
            continue
        called, _, called_mutated = reads_through_calls(analysis, functions)
        inputs_names = {
            n for n in analysis.reads | analysis.mutated | called | called_mutated
            if not is_ipython_name(n)
        }  # fmt: skip
        inputs = KeyInputs(
            analysis.code_hash,
            analysis.silent,
            {n: versions.get(n, ABSENT) for n in sorted(inputs_names)},
            {m: module_version(m, project, cwd) for m in sorted(analysis.imports)},
            {p: file_version(p, cwd) for p in directives.depends}
            | {
                f"content:{p}": file_version(p, cwd, content=True)
                for p in directives.depends_content
            },
        )
        entry = _find_entry(store, inputs, planner)
        if entry is not None and not directives.refresh:
            predictions.append(CellPrediction(index, "restore", "unchanged"))
            for name in (*entry.written, *entry.mutated):
                versions[name] = entry.version(name)
        else:
            reason = "tagged refresh" if directives.refresh else planner.why_missed(inputs)
            predictions.append(CellPrediction(index, "run", reason))
            for name in analysis.writes | analysis.mutated:
                versions[name] = f"new:{inputs.key()}"
        for name in analysis.deleted:
            versions.pop(name, None)
        functions.update(analysis.functions)
    return predictions


def _find_entry(store: Any, inputs: KeyInputs, planner: Any) -> CacheEntry | None:
    exact = planner.lookup(CellKey(inputs.key()))
    if exact is not None:
        return exact  # type: ignore[no-any-return]
    latest = store.get_record("cell-latest", inputs.code_hash)
    if latest is None:
        return None
    record = store.get_record(KIND, latest.payload.decode())
    if record is None:
        return None
    entry = CacheEntry.from_bytes(record.key, record.snapshot_id, record.payload)
    # The kernel also notes which names share a mutated object; nothing here can see that.
    if _without_aliases(entry.inputs) == _without_aliases(inputs):
        return entry
    return None
