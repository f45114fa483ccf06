"""Whole notebooks: a batch run in which every cell would be restored needs no kernel.

After ``nbcellar run`` executed a notebook in a fresh kernel and every code cell was either
restored or ran and was recorded (no errors, nothing that must always run, nothing to replay),
the run is remembered under the notebook's code: for each code cell its cell key and the outputs
and execution count the executed notebook got. A later run of the same code (same normalised
cells, tags and kernel) is served from that record when everything the kernel read from outside
its namespace is as the kernel recorded it in each cell's entry (the versions of the modules the
cells import, the files their ``depends:`` tags name) and every entry is still stored. Cells in a
fresh kernel read names only from cells before them, so the kernel would find the very same keys
and restore the very same entries; skipping it skips only the kernel start and the loading of
values that nothing would read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nbcellar.analysis import analyze_cell
from nbcellar.cache.entries import KIND as CELL_KIND
from nbcellar.cache.entries import CacheEntry
from nbcellar.cache.files import changed_file
from nbcellar.cache.inputs import Directives, directives_in, outside_inputs, uncacheable
from nbcellar.cache.sources import module_version
from nbcellar.logbook import RESERVED

KIND = "notebook-run"
FORMAT = 1


@dataclass(frozen=True)
class CellSource:
    """A code cell as the kernel sees it: its source and the tags ``nbcellar run`` sends."""

    source: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExecutedCell:
    """A code cell of an executed notebook: its cache key (None when it was not executed, as
    an empty cell is not) and what the executed notebook shows."""

    key: str | None
    outputs: Sequence[Mapping[str, Any]]
    execution_count: int | None
    saved_seconds: float = 0.0


@dataclass(frozen=True)
class RememberedRun:
    cells: tuple[ExecutedCell, ...]
    metadata: Mapping[str, Any]  # notebook metadata the kernel filled in (language_info)
    # What the cells logged, as run-log rows (see nbcellar.runs.records.save_log_rows).
    logged: list[Any] = field(default_factory=list)
    # The snapshots holding files cells wrote in the artifact folder, to write them again.
    file_snapshots: list[str] = field(default_factory=list)
    # The last run of this code (else an earlier one, whose inputs hold again).
    latest: bool = True


def _tags(cell: CellSource) -> list[str]:
    return sorted({*cell.tags, *directives_in(cell.source)})


def notebook_key(cells: Sequence[CellSource], kernel_name: str) -> str | None:
    """The key of a notebook's code; None when some cell would run whatever the cache holds."""
    import xxhash

    from nbcellar import __version__

    parts: list[object] = [FORMAT, __version__, kernel_name]
    for cell in cells:
        tags = _tags(cell)
        if not cell.source.strip():
            parts.append(None)  # not executed at all
            continue
        analysis = analyze_cell(cell.source)
        directives = Directives.from_tags(tags)
        if directives.refresh or uncacheable(analysis, directives, cell.source):
            return None
        parts.append([analysis.code_hash, analysis.silent, tags])
    text = json.dumps(parts, separators=(",", ":"))
    return str(xxhash.xxh3_128_hexdigest(text.encode("utf-8")))


def _entry(store: Any, key: str) -> CacheEntry | None:
    record = store.get_record(CELL_KIND, key)
    if record is None:
        return None
    return CacheEntry.from_bytes(record.key, record.snapshot_id, record.payload)


def _outside_change(entry: CacheEntry, cell: CellSource, project: Path, cwd: Path) -> str:
    """What the cell read from outside that is not what it was when the kernel keyed it (the
    modules its code imports, and those the code inside the values it read imports: the
    kernel keyed it on all of them; the files its tags name, the pipeline tasks it reads,
    the files it opened); empty when all hold."""
    directives = Directives.from_tags(_tags(cell))
    _, files = outside_inputs(analyze_cell(cell.source), directives, project, cwd)
    for module, version in entry.inputs.modules.items():
        if module_version(module, project, cwd) != version:
            return f"module {module}, which changed"
    for name in sorted(set(files) | set(entry.inputs.files)):
        if files.get(name) != entry.inputs.files.get(name):
            kind, _, what = name.rpartition(":")
            if kind == "upstream":
                return f"what task {what!r} produced, which changed"
            return f"file {what}, which changed"
    if changed_file(entry.touched, entry.wrote):
        return "a file it opened, which changed"
    return ""


def find_run(
    store: Any,
    cells: Sequence[CellSource],
    kernel_name: str,
    project: Path,
    cwd: Path,
    replayable: bool = False,
) -> RememberedRun | None:
    """The remembered run of these cells, if a kernel would restore every one of them now
    (``replayable``: or replay the cells whose values could not be stored)."""
    return check_run(store, cells, kernel_name, project, cwd, replayable)[0]


def check_run(
    store: Any,
    cells: Sequence[CellSource],
    kernel_name: str,
    project: Path,
    cwd: Path,
    replayable: bool = False,
) -> tuple[RememberedRun | None, str]:
    """:func:`find_run`, and when there is none, why (``[n]``: the n-th code cell)."""
    key = notebook_key(cells, kernel_name)
    if key is None:
        return None, _always_runs(cells)
    record = store.get_record(KIND, key)
    if record is None:
        return None, "its code, parameters or kernel changed since it last ran"
    try:
        data = json.loads(record.payload)
        candidates = [data, *data.get("earlier", [])]
    except (ValueError, TypeError, AttributeError):
        return None, "its remembered run cannot be read"
    # The last run of this code, else an earlier one whose inputs hold again (an edit of a
    # module, then its revert: the run before the edit is served).
    first_why = ""
    for number, candidate in enumerate(candidates):
        found, why = _served(store, cells, candidate, project, cwd, replayable)
        if found is not None:
            return (found if number == 0 else replace(found, latest=False)), ""
        first_why = first_why or why
    return None, first_why


def _served(
    store: Any,
    cells: Sequence[CellSource],
    data: Any,
    project: Path,
    cwd: Path,
    replayable: bool,
) -> tuple[RememberedRun | None, str]:
    """The remembered run ``data`` if a kernel would restore each of its cells now, or why not."""
    try:
        remembered = [ExecutedCell(**item) for item in data["cells"]]
        metadata = dict(data["metadata"])
    except (ValueError, KeyError, TypeError):
        return None, "its remembered run cannot be read"
    if len(remembered) != len(cells):
        return None, "its code changed since it last ran"
    found: list[ExecutedCell] = []
    logged: list[Any] = []
    file_snapshots: list[str] = []
    for number, (cell, done) in enumerate(zip(cells, remembered, strict=True), start=1):
        if done.key is None:
            found.append(done)
            continue
        entry = _entry(store, done.key)
        if entry is None:
            return None, f"cell [{number}]'s stored result is gone (store gc or prune)"
        if entry.replays and not replayable:
            return None, f"cell [{number}] made values that cannot be stored: it runs again"
        changed = _outside_change(entry, cell, project, cwd)
        if changed:
            return None, f"cell [{number}] reads {changed}"
        found.append(
            ExecutedCell(done.key, done.outputs, done.execution_count, saved_seconds=entry.seconds)
        )
        for name, cell in entry.logged:
            row = dict(cell)
            if "index" in row:
                row.update(snapshot=entry.snapshot_id, name=RESERVED)
            logged.append([name, row])
        if entry.files and entry.snapshot_id is not None:
            file_snapshots.append(entry.snapshot_id)
    return RememberedRun(tuple(found), metadata, logged, file_snapshots), ""


def _always_runs(cells: Sequence[CellSource]) -> str:
    for number, cell in enumerate((c for c in cells if c.source.strip()), start=1):
        analysis = analyze_cell(cell.source)
        directives = Directives.from_tags(_tags(cell))
        if directives.refresh:
            return f"cell [{number}] is tagged refresh"
        why = uncacheable(analysis, directives, cell.source)
        if why:
            return f"cell [{number}] always runs ({why})"
    return "a cell always runs"


def remember_run(
    store: Any,
    cells: Sequence[CellSource],
    kernel_name: str,
    executed: Sequence[ExecutedCell],
    metadata: Mapping[str, Any],
) -> bool:
    """Remember a run made in a fresh kernel; False when it does not qualify.

    Every non-empty cell must have a stored entry. (An entry with values that cannot be stored
    needs its cell run again: :func:`find_run` serves such a run only when asked for cells to
    replay, as ``nbcellar.inherit`` does.)
    """
    key = notebook_key(cells, kernel_name)
    if key is None or len(executed) != len(cells):
        return False
    for cell, done in zip(cells, executed, strict=True):
        if not cell.source.strip():
            continue
        if done.key is None:
            return False
        if _entry(store, done.key) is None:
            return False
    payload: dict[str, Any] = {
        "cells": [
            {
                "key": done.key,
                "outputs": [dict(o) for o in done.outputs],
                "execution_count": done.execution_count,
            }
            for done in executed
        ],
        "metadata": dict(metadata),
    }
    payload["earlier"] = _earlier(store.get_record(KIND, key), payload)
    store.put_record(KIND, key, json.dumps(payload, separators=(",", ":")).encode("utf-8"))
    return True


EARLIER = 2
"""Runs of the same code remembered before the last (with other inputs: a module's version,
a file's), so that an input changed back finds its run again."""


def _earlier(record: Any, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The runs to remember before ``payload``: the last one and those it remembered, each
    once, none with ``payload``'s cell keys, at most :data:`EARLIER`."""
    if record is None:
        return []
    try:
        data = json.loads(record.payload)
        before = [{"cells": data["cells"], "metadata": data["metadata"]}]
        before += [dict(e) for e in data.get("earlier", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
    keys = [[c.get("key") for c in payload["cells"]]]
    kept = []
    for run in before:
        cell_keys = [c.get("key") for c in run.get("cells", [])]
        if cell_keys not in keys:
            keys.append(cell_keys)
            kept.append({"cells": run["cells"], "metadata": run.get("metadata", {})})
    return kept[:EARLIER]
