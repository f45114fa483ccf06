"""``nbcellar.run(...)``: papermill's ``execute_notebook`` for nbcellar, grids and the cell cache
included; what ``nbcellar run`` calls too.

``nbcellar.run("train.ipynb", params={"alpha": 0.1})`` runs the notebook once;
``grid={"model": ["rf", "svm"], "C": [1, 10]}`` (or a list of such mappings, or a YAML file)
runs every combination, ``jobs`` at a time, on ``executor`` (``"local"``; see
:mod:`nbcellar.runs.launch`). It returns the RunSet of its runs, to compare in Python
(``result["accuracy"]``). A run whose cell raised raises :class:`RunFailed` (the RunSet in its
``runs``) unless ``allow_errors``. ``wait=False`` returns a :class:`RunHandle` at once;
``nbcellar.runs.attach(ID)`` finds one again later, from any process, by the launch's id.
``smoke=True`` runs the notebook's smoke test (see :mod:`nbcellar.smoke`): the values of its
cells tagged ``smoke-parameters`` as parameters (under ``params``), its ``skip-execution``
cells left out; without it those smoke cells never run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError

MAX_RUNS = 10_000


class RunFailed(NbcellarError):
    """A run of ``nbcellar.run`` stopped at a cell that raised (``runs``: every run)."""

    def __init__(self, message: str, runs: Any) -> None:
        super().__init__(message)
        self.runs = runs


def run(
    notebook: str | Path,
    params: Mapping[str, Any] | None = None,
    *,
    grid: Any = None,
    jobs: int | None = None,
    executor: Any = None,
    retries: int = 1,
    resume: str | None = None,
    store: str | Path | None = None,
    cache: bool = True,
    output: str | Path | None = None,
    kernel: str | None = None,
    timeout: float | None = None,
    allow_errors: bool = False,
    cwd: str | Path | None = None,
    strict: bool = False,
    max_runs: int = MAX_RUNS,
    wait: bool = True,
    progress: Any = None,
    smoke: bool = False,
) -> Any:
    """Run ``notebook`` (.ipynb or percent script) once per parameter set; see the module."""
    import math
    import os
    from dataclasses import replace

    from nbcellar.runs import params as parameters
    from nbcellar.runs.launch import (
        RunOptions,
        executor_for,
        foresee,
        launch,
        plan_runs,
        prepared,
    )

    path = Path(notebook)
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise NbcellarError(f"timeout={timeout!r} is not a number of seconds above 0 (None "
                            "for no limit)")  # fmt: skip
    if jobs is not None and jobs < 1:
        raise NbcellarError(f"jobs={jobs!r}: at least 1")
    if not isinstance(retries, int) or retries < 0:
        raise NbcellarError(f"retries={retries!r}: a whole number, 0 or more")
    chosen = executor_for(executor)  # an unknown one stops here, before anything is written
    resumed = None
    if resume is not None:
        from nbcellar.store.location import store_for_notebook

        if params or grid is not None or not cache:
            raise NbcellarError("resume=...: the run goes on with its own parameters and the "
                                "cache (no params, grid or cache=False with it)")  # fmt: skip
        params, resumed = resumed_params(path, resume, store_for_notebook(store, path))
    sets = parameters.expand((), None, max_runs, params=params, grid=grid)
    options = RunOptions(
        kernel_name=kernel, timeout=timeout, allow_errors=allow_errors,
        cwd=None if cwd is None else Path(cwd), jobs=jobs or os.cpu_count() or 1,
        retries=retries, resume_from=resumed, smoke=smoke,
    )  # fmt: skip
    target = None if output is None else Path(output)
    plan = plan_runs(path, sets, options, output=target, strict=strict)
    with prepared(chosen, plan, options):  # (a scheduler not reached: nothing written)
        if cache:
            from nbcellar.store import open_store
            from nbcellar.store.location import store_for_notebook

            opened = open_store(store_for_notebook(store, path))
            options = replace(options, store_root=opened.root)
            opened.close()
            plan = foresee(plan, opened.root)
    launched = launch(plan, options, chosen, progress)  # (it releases the executor if it fails)
    handle = RunHandle(launched.grid or _only_id(launched), options.store_root, launched)
    return handle.wait() if wait else handle


def resumed_params(notebook: Path, resume: str, store_root: Path) -> tuple[dict[str, Any], str]:
    """The parameters and the id of the run ``resume`` names (see
    nbcellar.checkpointing.resume_point): a resumed run goes on with the same ones."""
    from nbcellar.checkpointing import CheckpointError, resume_point
    from nbcellar.store import open_store

    if not store_root.exists():
        raise CheckpointError(f"--resume {resume}: there is no store at {store_root}")
    store = open_store(store_root)
    try:
        record = resume_point(store, resume, notebook)
    finally:
        store.close()
    return dict(record.params), str(record.id)


def _only_id(launched: Any) -> str | None:
    records = launched.records.records
    return str(records[1].id) if len(records) == 1 else None


class RunHandle:
    """A launch of ``nbcellar.run(..., wait=False)``, or one found again by its id (the grid's
    id, or the run's for a single run): ``status()``, ``wait()``, ``cancel()``."""

    def __init__(self, launch_id: str | None, store_root: Path | None, launched: Any = None):
        self.id = launch_id
        self.store_root = store_root
        self._launched = launched

    def __repr__(self) -> str:
        return f"<nbcellar launch {self.id}: {self.status()}>"

    def _records(self) -> list[Any]:
        from nbcellar.runs.records import RunBook
        from nbcellar.store import open_store

        if self.store_root is None or self.id is None:
            return []
        store = open_store(self.store_root)
        try:
            book = RunBook(store)
            if self.id.startswith("grid-"):
                return [r for r in book.all() if r.grid == self.id]
            found = book.get(self.id)
            return [] if found is None else [found]
        finally:
            store.close()

    def status(self) -> dict[str, str]:
        """Each run's status by run id (queued, running, ok, failed, cancelled, died); without
        a store, by run number."""
        if self.store_root is None and self._launched is not None:
            return {str(n): s for n, s in self._launched.launch.status().items()}
        return {r.id: r.status for r in self._records()}

    def cancel(self) -> None:
        """Stop the runs not ended: a launch of this process, or one on a cluster's scheduler
        (see nbcellar.runs.jobs.cancel); one whose runs live in another process stops with
        that process (Ctrl-C it)."""
        if self._launched is not None:
            self._launched.launch.cancel()
            return
        running = [r for r in self._records() if r.status in ("queued", "running")]
        if running and self.id is not None:
            from nbcellar.runs.jobs import cancel

            cancel(self.id, self.store_root)

    def wait(self, poll: float = 0.5) -> Any:
        """Until every run ended: the RunSet of the runs (RunFailed if one failed and the
        launch did not allow errors)."""
        if self._launched is not None:
            outcomes = self._launched.wait()
            return _runset(self._launched, outcomes)
        while any(r.status in ("queued", "running") for r in self._records()):
            time.sleep(poll)
        from nbcellar.runs.runset import RecordedRun, RunSet

        assert self.store_root is not None
        return RunSet([RecordedRun(r, self.store_root) for r in self._records()], self.store_root)


def _runset(launched: Any, outcomes: list[Any]) -> Any:
    from nbcellar.runs.runset import RecordedRun, RunSet

    root = launched.records.store_root
    if root is not None:
        runset = RunSet([RecordedRun(o.record, root) for o in outcomes], root)
    else:
        from nbcellar.runs.collect import collect

        runset = collect([str(o.run.output) for o in outcomes])
    failed = [o for o in outcomes if o.status == "failed"]
    if failed and not launched.options.allow_errors:
        first = failed[0]
        cell = first.result.failed
        where = "" if len(outcomes) == 1 else f"run {first.run.number} of "
        raise RunFailed(
            f"{where}{launched.plan.source}: cell [{cell.index + 1}] raised {cell.error}; see "
            f"{first.run.output}",
            runset,
        )
    return runset


def attach(launch_id: str, store: str | Path | None = None) -> RunHandle:
    """A launch found again by its id (``nbcellar runs`` shows it), from any process."""
    from nbcellar.store.location import find_store_root

    root = find_store_root(store)
    handle = RunHandle(launch_id, root)
    if not root.exists() or not handle._records():
        raise NbcellarError(f"no launch {launch_id!r} in {root} (see 'nbcellar runs')")
    return handle
