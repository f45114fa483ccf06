"""Launches kept in the store, so that any process can list, wait for or cancel them: what
``nbcellar jobs`` shows.

Every launch with a store leaves a record (kind ``launch``): its id (the grid's, or its one
run's), the executor, the notebook, its runs' record ids in plan order, the process that
launched it, and how another process reaches its runs (``reach``: a Dask scheduler's address,
the task keys and the cancel event's name; empty for runs that live and die with their
process). The runs' own records say how each is doing; on a cluster their workers write them,
so a launch on a running scheduler goes on, and stays visible here, after its client is gone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError

KIND = "launch"
ENDED = ("ok", "failed", "cancelled", "died")


@dataclass(frozen=True)
class LaunchRecord:
    id: str
    executor: str
    notebook: str
    created: float
    runs: list[str]  # the runs' record ids, in plan order
    outputs: list[str]  # where each run's executed notebook goes
    owner: str | None = None  # the process that launched it
    reach: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LaunchRecord:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Job:
    """A launch and its runs' records as the store has them now."""

    launch: LaunchRecord
    runs: list[Any]  # RunRecord, in plan order

    @property
    def id(self) -> str:
        return self.launch.id

    @property
    def ended(self) -> bool:
        return all(r.status in ENDED for r in self.runs)

    def counts(self) -> dict[str, int]:
        """Runs by status (``retried`` counts the runs that started again, whatever their
        status now)."""
        found: dict[str, int] = {}
        for run in self.runs:
            found[run.status] = found.get(run.status, 0) + 1
        retried = sum(r.retried for r in self.runs)
        if retried:
            found["retried"] = retried
        return found

    @property
    def elapsed(self) -> float:
        starts = [r.started for r in self.runs if r.started is not None]
        if not starts:
            return 0.0
        ends = [r.ended or time.time() for r in self.runs if r.started is not None]
        return float(max(ends) - min(starts))


def launch_id(records: Any) -> str | None:
    """A launch's id: its grid's, or its one run's."""
    if records.grid is not None:
        return str(records.grid)
    only = list(records.records.values())
    return str(only[0].id) if len(only) == 1 else None


def record_launch(
    store_root: Path, plan: Any, records: Any, executor: Any, reach: Mapping[str, Any]
) -> None:
    from nbcellar.owners import me
    from nbcellar.store import open_store

    ident = launch_id(records)
    if ident is None:
        return
    record = LaunchRecord(
        id=ident, executor=str(getattr(executor, "address_text", executor.name)),
        notebook=str(Path(plan.source).resolve()), created=time.time(),
        runs=[records.id_of(r.number) for r in plan.runs],
        outputs=[str(r.output.resolve()) for r in plan.runs], owner=me(), reach=dict(reach),
    )  # fmt: skip
    store = open_store(store_root)
    try:
        store.put_record(KIND, ident, json.dumps(asdict(record), default=repr).encode("utf-8"))
    finally:
        store.close()


def _read(store: Any, found: Any) -> Job:
    from nbcellar.runs.records import RunBook

    launch = LaunchRecord.from_json(json.loads(found.payload))
    book = RunBook(store)
    runs = [r for r in (book.get(i) for i in launch.runs) if r is not None]
    return Job(launch, runs)


def jobs(store: str | Path | None = None) -> list[Job]:
    """Every launch the store knows, newest first (``nbcellar jobs``)."""
    from nbcellar.store import open_store
    from nbcellar.store.location import find_store_root

    root = find_store_root(store)
    if not root.exists():
        return []
    opened = open_store(root)
    try:
        found = [_read(opened, r) for r in opened.list_records(KIND)]
    finally:
        opened.close()
    return sorted(found, key=lambda j: j.launch.created, reverse=True)


def job(launch: str, store: str | Path | None = None) -> Job:
    """One launch by its id (or the start of one, if only one id starts so)."""
    from nbcellar.store import open_store
    from nbcellar.store.location import find_store_root

    root = find_store_root(store)
    if not root.exists():
        raise NbcellarError(f"no launch {launch!r}: there is no store at {root}")
    opened = open_store(root)
    try:
        found = opened.get_record(KIND, launch)
        if found is None:
            starting = [r for r in opened.list_records(KIND) if r.key.startswith(launch)]
            if len(starting) != 1:
                some = "several launches" if starting else "no launch"
                raise NbcellarError(f"{some} {launch!r} in {root} (see 'nbcellar jobs')")
            found = starting[0]
        return _read(opened, found)
    finally:
        opened.close()


def wait(
    launch: str,
    store: str | Path | None = None,
    poll: float = 1.0,
    heard: Callable[[Job], None] | None = None,
    timeout: float | None = None,
) -> Job:
    """Until every run of the launch ended (``heard`` sees the launch at every change); each
    run's executed notebook written where it was asked for, if it is not there yet."""
    started = time.monotonic()
    last: list[tuple[str, str, int | None]] | None = None
    while True:
        now = job(launch, store)
        state = [(r.id, r.status, r.cell) for r in now.runs]
        if state != last and heard is not None:
            heard(now)
        last = state
        if now.ended:
            _write_outputs(now, store)
            return now
        if timeout is not None and time.monotonic() - started > timeout:
            raise NbcellarError(f"launch {now.id} has not ended after {timeout:g} s; "
                                f"'nbcellar jobs {now.id}' shows how it goes")  # fmt: skip
        time.sleep(poll)


def _write_outputs(found: Job, store: str | Path | None) -> None:
    """Executed notebooks from the store's copies, where the launch asked for them (its
    client gone before it could write them)."""
    import shutil

    from nbcellar.store.location import find_store_root

    root = find_store_root(store)
    for record, target in zip(found.runs, found.launch.outputs, strict=False):
        copy = root / "runs" / record.id / "executed.ipynb"
        path = Path(target)
        if copy.exists() and not path.exists() and path.parent.is_dir():
            shutil.copyfile(copy, path)


def cancel(launch: str, store: str | Path | None = None) -> Job:
    """Stop a launch's runs that have not ended: on a cluster its scheduler is told (queued
    runs never start, running ones stop their kernels); a launch whose runs live in another
    process of this machine is stopped there."""
    from nbcellar.owners import alive, describe
    from nbcellar.runs.records import RunBook
    from nbcellar.store import open_store
    from nbcellar.store.location import find_store_root

    found = job(launch, store)
    left = [r for r in found.runs if r.status not in ENDED]
    if not left:
        return found
    reach = found.launch.reach
    if not reach:
        owner = found.launch.owner
        if owner and alive(owner):
            raise NbcellarError(f"launch {found.id} runs in {describe(owner)}: stop it there "
                                "(Ctrl-C)")  # fmt: skip
        return job(found.id, store)  # (its process is gone: its runs read as died)
    # The queued runs' records first: a worker that takes one now skips it, and a client
    # still following the launch reads its aborted tasks as cancelled, not lost.
    opened = open_store(find_store_root(store))
    try:
        book = RunBook(opened)
        book.cancel([r for r in left if r.status == "queued"])  # running: their workers say
    finally:
        opened.close()
    if "scheduler" in reach:
        from nbcellar.runs.on_dask import cancel_on_scheduler

        cancel_on_scheduler(reach)
    elif "ipyparallel" in reach:
        from nbcellar.runs.on_ipyparallel import cancel_on_controller

        cancel_on_controller(reach)
    return job(found.id, store)
