"""Launches and their runs as the dashboard's jobs page shows them: read from the store's
records (``launch`` and ``run``) without writing anything (a run whose process is gone reads as
died, as ``nbcellar jobs`` says, but is not written so here)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from nbcellar.runs.jobs import KIND, Job, LaunchRecord


def _record(payload: bytes) -> Any:
    from nbcellar.owners import alive
    from nbcellar.runs.records import RunRecord

    record = RunRecord.from_json(json.loads(payload))
    if record.status in ("queued", "running") and record.owner and not alive(record.owner):
        record = replace(record, status="died")
    return record


def snapshot(store: Any, most: int = 50) -> list[dict[str, Any]]:
    """The ``most`` latest launches, newest first, each with its runs in plan order."""
    from nbcellar.runs.records import KIND as RUN

    launches = sorted(
        (LaunchRecord.from_json(json.loads(r.payload)) for r in store.list_records(KIND)),
        key=lambda launch: launch.created,
        reverse=True,
    )[:most]
    wanted = [i for launch in launches for i in launch.runs]
    records = {r.key: _record(r.payload) for r in store.get_records(RUN, wanted)}
    now = time.time()
    found = []
    for launch in launches:
        job = Job(launch, [records[i] for i in launch.runs if i in records])
        runs = [
            {
                "id": r.id,
                "params": dict(r.params),
                "status": r.status,
                "worker": r.worker,
                "cell": None if r.cell is None else r.cell + 1,
                "attempts": r.attempts,
                "elapsed": None if r.started is None else (r.ended or now) - r.started,
                "error": r.error,
            }
            for r in job.runs
        ]
        found.append({
            "id": launch.id, "executor": launch.executor, "notebook": launch.notebook,
            "created": launch.created, "counts": job.counts(), "ended": job.ended,
            "elapsed": job.elapsed, "cancellable": bool(launch.reach) and not job.ended,
            "runs": runs,
        })  # fmt: skip
    return found
