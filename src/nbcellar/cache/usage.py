"""What the cell cache holds and what it is worth: its entries and their sizes, per notebook
the entries its recorded runs used, how often they were restored (hits) and the time that
saved, and what ``nbcellar store prune`` would free (the dashboard's cache page).

Read from the store's records and index only: nothing is unpickled. Hits are counted from
the runs' records (each keeps, per code cell, its key and whether it was restored); cells
restored in an interactive kernel are not recorded anywhere, so not counted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

DAY = 86400.0


@dataclass(frozen=True)
class NotebookUsage:
    notebook: str
    runs: int
    entries: int  # distinct entries its runs' cells used, still in the store
    bytes: int  # what those entries hold (a value two entries share counted once)
    hits: int  # cells restored
    saved_seconds: float  # the time those restores saved


@dataclass(frozen=True)
class Freed:
    """What a prune would forget, and the bytes only those entries hold."""

    entries: int
    bytes: int


@dataclass(frozen=True)
class CacheUsage:
    entries: int
    bytes: int
    hits: int
    saved_seconds: float
    notebooks: tuple[NotebookUsage, ...]
    unused: int  # entries no recorded run used (made interactively, or their runs pruned)
    prune: Mapping[str, Freed] = field(default_factory=dict)  # by what would be pruned

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def cache_usage(store: Any, now: float | None = None) -> CacheUsage:
    from nbcellar.cache.entries import KIND
    from nbcellar.cache.recording import LATEST
    from nbcellar.runs.records import KIND as RUN

    now = time.time() if now is None else now
    entries = store.list_records(KIND)
    snapshot_of = {r.key: r.snapshot_id for r in entries}
    values = _values_of(store, {s for s in snapshot_of.values() if s})
    sizes = _value_sizes(store)

    def held(keys: Iterable[str]) -> int:
        found = set().union(*(values.get(snapshot_of.get(k) or "", set()) for k in keys))
        return sum(sizes.get(v, 0) for v in found)

    by_notebook: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for record in store.list_records(RUN):
        try:
            run = json.loads(record.payload)
        except ValueError:
            continue
        mine = by_notebook.setdefault(
            str(run.get("notebook", "")), {"runs": 0, "keys": set(), "hits": 0, "saved": 0.0}
        )
        mine["runs"] += 1
        for key, status, _seconds, saved in run.get("cache") or []:
            if key is None or key not in snapshot_of:
                continue
            mine["keys"].add(key)
            if status == "restored":
                mine["hits"] += 1
                mine["saved"] += float(saved or 0.0)
        used |= mine["keys"]
    notebooks = tuple(
        NotebookUsage(name, n["runs"], len(n["keys"]), held(n["keys"]), n["hits"],
                      round(n["saved"], 3))
        for name, n in sorted(by_notebook.items(), key=lambda item: -len(item[1]["keys"]))
    )  # fmt: skip
    latest = {r.payload.decode() for r in store.list_records(LATEST)}
    doomed = {
        "superseded": [r.key for r in entries if r.key not in latest],
        "older than 30 days": [r.key for r in entries if now - r.created > 30 * DAY],
    }
    return CacheUsage(
        entries=len(entries),
        bytes=held(snapshot_of),
        hits=sum(n.hits for n in notebooks),
        saved_seconds=round(sum(n.saved_seconds for n in notebooks), 3),
        notebooks=notebooks,
        unused=len(set(snapshot_of) - used),
        prune={
            what: Freed(len(keys), _freed(keys, snapshot_of, values, sizes))
            for what, keys in doomed.items()
        },
    )


def _values_of(store: Any, snapshots: set[str]) -> dict[str, set[str]]:
    """The stored values of each snapshot (every snapshot's, not only the cache's: a value a
    run's checkpoint also holds is not freed by a prune)."""
    found: dict[str, set[str]] = {}
    with store.index.read() as db:
        for snapshot, value in db.execute(
            "SELECT DISTINCT snapshot_id, value_key FROM variables WHERE value_key IS NOT NULL"
        ):
            found.setdefault(snapshot, set()).add(value)
    return found


def _value_sizes(store: Any) -> dict[str, int]:
    with store.index.read() as db:
        return {key: int(n) for key, n in db.execute("SELECT key, nbytes FROM stored_values")}


def _freed(
    doomed: list[str],
    snapshot_of: Mapping[str, str | None],
    values: Mapping[str, set[str]],
    sizes: Mapping[str, int],
) -> int:
    """The bytes of the values only the doomed entries' snapshots hold."""
    gone = {snapshot_of[k] for k in doomed if snapshot_of.get(k)}
    kept = set().union(*(v for s, v in values.items() if s not in gone))
    doomed_values = set().union(*(values.get(s or "", set()) for s in gone))
    return sum(sizes.get(v, 0) for v in doomed_values - kept)
