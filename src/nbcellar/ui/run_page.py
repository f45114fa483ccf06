"""What the run page shows beside the record: the run's checkpoints with their metrics, the
analyses computed over them, and the source files kept with it (read from the store's records
and the run's folder: nothing is unpickled)."""

from __future__ import annotations

import json
from typing import Any


def run_details(store: Any, run_id: str) -> dict[str, Any]:
    from nbcellar.checkpointing import checkpoints_of

    taken = checkpoints_of(store, run_id)
    checkpoints = [
        {"step": c.step, "time": c.time, "loop": c.loop, "names": list(c.names),
         "metrics": dict(c.metrics)}
        for c in taken
    ]  # fmt: skip
    return {
        "checkpoints": checkpoints,
        "analyses": _analyses(store, {c.snapshot: c.step for c in taken}),
        "sources": _sources(store, run_id),
    }


def _analyses(store: Any, steps: dict[str, Any]) -> list[dict[str, Any]]:
    """Each function analysed over the checkpoints (by its digest): its values by step."""
    from nbcellar.runs.analyses import KIND

    if not steps:
        return []
    found: dict[str, list[dict[str, Any]]] = {}
    for record in store.list_records(KIND):
        snapshot, _, digest = record.key.partition("/")
        if snapshot in steps:
            try:
                values = json.loads(record.payload)
            except ValueError:
                continue
            found.setdefault(digest, []).append({"step": steps[snapshot], **values})
    return [{"function": digest, "rows": rows} for digest, rows in found.items()]


def _sources(store: Any, run_id: str) -> list[str]:
    folder = store.root / "runs" / run_id / "source"
    if not folder.is_dir():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
