"""Pruning the cell cache: the entries a store keeps of cells edited since, refreshed, or run
long ago. What a pruned entry held goes at the next ``gc`` (objects other entries share stay);
a cell whose entry was pruned runs again the next time, as if never run."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from nbcellar.cache.entries import KIND
from nbcellar.cache.recording import CELL_SNAPSHOT_LABEL, LATEST


@dataclass(frozen=True)
class PruneReport:
    entries: int  # cache entries forgotten
    kept: int
    snapshots: int  # snapshots only they held


def prune(store: Any, *, older_than: float | None = None, superseded: bool = False) -> PruneReport:
    """Forget the cache entries made more than ``older_than`` seconds ago, and (``superseded``)
    those a later run of the same cell code replaced (an edit upstream, another parameter
    value: each cell code keeps its latest entry) with the values of entries a ``refresh``
    replaced. (The entries of a cell's code before it was edited go with ``older_than``.)"""
    entries = store.list_records(KIND)
    latest = {r.payload.decode() for r in store.list_records(LATEST)}
    now = time.time()
    doomed = []
    for record in entries:
        old = older_than is not None and now - record.created > older_than
        replaced = superseded and record.key not in latest
        if old or replaced:
            doomed.append(record.key)
    snapshots = store.delete_records(KIND, doomed) if doomed else 0
    if superseded:
        snapshots += store.delete_unheld_snapshots(CELL_SNAPSHOT_LABEL)
    return PruneReport(len(doomed), len(entries) - len(doomed), snapshots)
