"""What a worker of a cluster executor runs for one run: nbcellar's own entry point and a spec.

A spec is JSON: the run's notebook (its parameters injected, as nbformat JSON), the kernel's
working directory and name, the cell time limit, whether errors are allowed, the store and the
run's record id. The worker runs the notebook in a kernel of its own machine with the cell cache
on the store (:func:`nbcellar.runs.execute.execute_notebook`) and answers JSON too: the executed
notebook, what happened to each cell, its timings. No user code is pickled on the way, so what
works in ``nbcellar run`` works on the cluster.

While it runs, the worker reports each cell started and done as events on the cluster's own
channel (Dask's ``log_event`` topics), and stops its kernel when the launch is cancelled.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

Report = Callable[[dict[str, Any]], None]


def project_files(plan: Any) -> dict[str, str]:
    """The sources of the project modules the plan's notebook imports (and those they import),
    by path relative to the kernel's folder: what a worker on another machine needs to import
    them as the notebook does here."""
    from nbcellar.runs.records import project_modules

    cwd = Path(plan.cwd).resolve()
    found = [p.resolve() for p in project_modules(Path(plan.source), cwd).values()]
    # A module of a package imports its package first: the packages' __init__ go too.
    packages = {f / "__init__.py" for p in found for f in p.parents if cwd in f.parents}
    files: dict[str, str] = {}
    for path in sorted({*found, *(p for p in packages if p.is_file())}):
        try:
            files[path.relative_to(cwd).as_posix()] = path.read_text(encoding="utf-8")
        except (ValueError, OSError, UnicodeDecodeError):  # (outside the folder: not shipped)
            continue
    return files


def make_spec(
    run: Any,
    plan: Any,
    options: Any,
    run_id: str | None,
    modules: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The spec of one planned run (see the module): with a store, the worker keeps the run's
    record (running, the cell it is at, how it ended), so a run goes on being recorded when
    its client is gone; ``retries``: how many lost workers it survives; ``modules``: the
    project's module sources (see project_files), for a worker where the kernel's folder is
    not."""
    import nbformat

    from nbcellar.notebook.model import to_nbformat

    return {
        "number": run.number,
        "notebook": nbformat.writes(to_nbformat(run.notebook)),
        "cwd": str(plan.cwd),
        "kernel_name": plan.kernel_name,
        "timeout": options.timeout,
        "allow_errors": options.allow_errors,
        "store_root": store_address(options.store_root),
        "run_id": run_id,
        "retries": options.retries,
        "resume_from": options.resume_from,
        "output": str(run.output),
        "write_output": False,  # (the executor says: True where the client may be gone)
        "modules": dict(modules or {}),
    }


def store_address(root: Path | None) -> str | None:
    """How a worker finds the run's store: a shared store's URL (each machine keeps its own
    local folder of it), else the folder itself (the same machine, a shared file system)."""
    from nbcellar.store.location import shared_url

    if root is None:
        return None
    return shared_url(root) or str(root)


def store_here(address: Any) -> Path | None:
    """The folder of the store ``address`` names on this machine (see store_address)."""
    from nbcellar.store.location import find_store_root

    return None if address is None else find_store_root(str(address))


def execute_spec(
    spec: Mapping[str, Any],
    report: Report | None = None,
    cancelled: Callable[[], bool] | None = None,
    worker: str = "",
) -> dict[str, Any]:
    """Run one spec here (on ``worker``); ``report`` hears ``{"number", "event":
    "run-started" | "cell-started" | "cell-done", ...}``; ``cancelled`` is asked twice a
    second whether to stop the kernel now. The answer's ``status`` is ``ok``, ``failed``,
    ``cancelled``, or ``skipped`` (the record says the run is not to start: cancelled, ended,
    or its worker was lost more times than ``retries``)."""
    with _folder_for(spec) as cwd:
        return _execute(spec, cwd, report, cancelled, worker)


@contextlib.contextmanager
def _folder_for(spec: Mapping[str, Any]) -> Iterator[Path]:
    """The kernel's folder: the client's, where this machine has it (the same machine, a
    shared file system); else a temporary one holding the project's modules."""
    import shutil
    import tempfile

    cwd = Path(str(spec["cwd"]))
    if cwd.is_dir():
        yield cwd
        return
    folder = Path(tempfile.mkdtemp(prefix="nbcellar-run-"))
    try:
        for relative, source in dict(spec.get("modules") or {}).items():
            target = folder / relative
            if folder.resolve() not in target.resolve().parents:
                continue  # (a path out of the folder: never written)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(source, encoding="utf-8")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _execute(
    spec: Mapping[str, Any],
    cwd: Path,
    report: Report | None,
    cancelled: Callable[[], bool] | None,
    worker: str,
) -> dict[str, Any]:
    from nbcellar.runs.execute import CellRun, execute_notebook, kernel_env
    from nbcellar.runs.pool import KernelPool, close_thread_loop

    nb = _notebook(str(spec["notebook"]))
    number = int(spec["number"])
    store_root = store_here(spec.get("store_root"))
    say = report or (lambda message: None)
    book = _Book(store_root, spec.get("run_id"))
    record = book.claim(worker, int(spec.get("retries", 1)))
    if book.keeps and record is None:
        return {"status": "skipped", "record": book.current()}
    say({"number": number, "event": "run-started", "worker": worker,
         "attempt": 1 if record is None else record.attempts})  # fmt: skip

    def started(index: int) -> None:
        book.at_cell(index)
        say({"number": number, "event": "cell-started", "index": index})

    def done(cell: CellRun) -> None:
        say({"number": number, "event": "cell-done", "cell": asdict(cell)})

    from nbcellar.kernel import protocol

    # What stops the run's kernel (once one is needed: none if the store serves the run).
    stoppers: list[Callable[[], None]] = []
    pools: list[Any] = []

    own_folder = str(cwd) == str(spec["cwd"])

    def kernel() -> Any:
        env = kernel_env(store_root)
        setup = protocol.load_extension() if store_root is not None else ""
        if worker and own_folder:  # (not for a temporary folder: they would pile up)
            manager, pool = warm_kernel(str(spec["kernel_name"]), cwd, env, setup)
            stoppers.append(lambda: _kill(manager))
            pools.append((pool, manager))
            return manager
        own = KernelPool(str(spec["kernel_name"]), cwd, env, 1, 1, setup=setup)
        stoppers.append(own.close)
        pools.append((own, None))
        return own.take()

    stop = threading.Event()
    if cancelled is not None:
        threading.Thread(target=_watch, args=(cancelled, stop, stoppers), daemon=True,
                         name="nbcellar-cancel-watch").start()  # fmt: skip
    try:
        result = execute_notebook(
            nb, cwd=cwd, kernel_name=str(spec["kernel_name"]), timeout=spec.get("timeout"),
            allow_errors=bool(spec.get("allow_errors")), store_root=store_root,
            on_cell_start=started, on_cell_done=done, kernel=kernel,
            run_id=spec.get("run_id"), resume_from=spec.get("resume_from"),
        )  # fmt: skip
    finally:
        stop.set()
        for pool, manager in pools:
            if manager is None:
                pool.close()
            else:  # (the run shut its kernel down; the pool keeps the next one ready)
                pool.forget(manager)
        close_thread_loop()
    answer = answer_of(result)
    if cancelled is not None and _asked(cancelled):  # its kernel was stopped under it
        book.cancelled()
        answer["status"] = "cancelled"
    else:
        answer["status"] = "ok" if result.failed is None else "failed"
        book.finish(result, Path(str(spec["output"])), bool(spec.get("write_output")))
    answer["record"] = book.current()
    return answer


_FORK_SERVERS: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
_FORK_LOCK = threading.Lock()


def _fork_server_unlocked(cwd: Path, env: Mapping[str, str]) -> Any:
    """The fork server this worker process keeps for kernels started in ``cwd`` with ``env``
    (see nbcellar.runs.forkserver), made once, under _FORK_LOCK: kernels are forked from it
    instead of importing their machinery again. It ends with the worker (its input closes);
    None where kernels cannot be forked."""
    from nbcellar.runs.pool import _fork_server

    key = (str(cwd), tuple(sorted(env.items())))
    if key not in _FORK_SERVERS:
        _FORK_SERVERS[key] = _fork_server(cwd, dict(env))
    return _FORK_SERVERS[key]


_WARM: dict[tuple[Any, ...], Any] = {}
WARM_POOLS = 2
"""At most this many kinds of kernel (name, folder, environment) kept ready per worker: one
worker (an ipyparallel engine kept for days) may serve many projects."""
_WARM_CLOSED_AT_EXIT: list[bool] = []
_CLOSING: list[threading.Thread] = []  # (pools of projects no longer served, being closed)


def warm_kernel(kernel_name: str, cwd: Path, env: Mapping[str, str], setup: str) -> tuple[Any, Any]:
    """A kernel for one run of this worker process, and the pool it came from: the pool
    (one per kernel name, folder and environment) keeps the next kernel started and ready
    while this one runs, forked from the worker's fork server, so a worker's runs after its
    first do not wait for a kernel. The kernel ready when the worker ends goes with it."""
    import atexit

    from nbcellar.runs.pool import KernelPool

    key = (kernel_name, str(cwd), tuple(sorted(env.items())), setup)
    with _FORK_LOCK:
        pool = _WARM.pop(key, None)
        if pool is None and len(_WARM) >= WARM_POOLS:  # (an engine serving many projects)
            oldest = _WARM.pop(next(iter(_WARM)))  # (the least recently used)
            closing = threading.Thread(target=_close_pool, args=(oldest,),
                                       name="nbcellar-warm-close", daemon=True)  # fmt: skip
            _CLOSING.append(closing)
            closing.start()
        if pool is None:
            forks = None
            with contextlib.suppress(Exception):  # (where kernels cannot be forked: started)
                forks = _fork_server_unlocked(cwd, env)
            pool = KernelPool(kernel_name, cwd, dict(env), 1, 1 << 30, setup=setup, forks=forks)
            if not _WARM_CLOSED_AT_EXIT:
                _WARM_CLOSED_AT_EXIT.append(True)
                atexit.register(_close_warm)
        _WARM[key] = pool  # (the most recently used last)
    return pool.take(), pool


def _close_pool(pool: Any) -> None:
    from nbcellar.runs.pool import close_thread_loop

    with contextlib.suppress(Exception):
        pool.close()
    close_thread_loop()


def _close_warm() -> None:
    """Stop the kernels kept ready (at the worker's exit), and wait for those being stopped."""
    for pool in list(_WARM.values()):
        _close_pool(pool)
    _WARM.clear()
    for closing in _CLOSING:
        closing.join(30)
    _CLOSING.clear()


def _kill(manager: Any) -> None:
    from nbcellar.runs.pool import _kill as kill

    kill(manager)


def _asked(cancelled: Callable[[], bool]) -> bool:
    try:
        return bool(cancelled())
    except Exception:  # the scheduler is gone: nobody asked
        return False


class _Book:
    """The record of the run a worker executes, kept by the worker (nothing without a store
    or a record id)."""

    def __init__(self, store_root: Path | None, run_id: Any) -> None:
        self.store_root = store_root
        self.run_id = None if run_id is None else str(run_id)
        self.record: Any = None

    @property
    def keeps(self) -> bool:
        return self.store_root is not None and self.run_id is not None

    def _with(self, action: Callable[[Any], Any]) -> Any:
        from nbcellar.runs.records import RunBook
        from nbcellar.store import open_store

        assert self.store_root is not None
        store = open_store(self.store_root)
        try:
            return action(RunBook(store))
        finally:
            store.close()

    def claim(self, worker: str, retries: int) -> Any:
        if not self.keeps:
            return None
        assert self.run_id is not None
        run_id = self.run_id
        self.record = self._with(lambda book: book.claim(run_id, worker, retries))
        return self.record

    def current(self) -> dict[str, Any] | None:
        if not self.keeps:
            return None
        run_id = self.run_id
        found = self._with(lambda book: book.get(run_id))
        return None if found is None else dict(found.to_json())

    def at_cell(self, index: int) -> None:
        if self.record is not None:
            record = self.record
            self.record = self._with(lambda book: book.at_cell(record, index))

    def finish(self, result: Any, output: Path, write: bool) -> None:
        """The run's record finished; with ``write``, its executed notebook written where the
        client asked too, if that folder is here (the same machine, a shared file system)."""
        if write and output.parent.is_dir():
            from nbcellar.notebook import write_notebook

            with contextlib.suppress(OSError):
                write_notebook(result.notebook, output)
        if self.record is None:
            return
        record = self.record
        self.record = self._with(lambda book: book.finish(record, result, output))

    def cancelled(self) -> None:
        if self.record is not None:
            record = self.record
            self._with(lambda book: book.cancel([record]))


def _watch(
    cancelled: Callable[[], bool], stop: threading.Event, stoppers: list[Callable[[], None]]
) -> None:
    while not stop.wait(0.5):
        try:
            if cancelled():
                for stopper in list(stoppers):
                    stopper()  # the kernel stops; the run ends at once
                return
        except Exception:  # the scheduler is gone: the run goes on where it is
            return


def answer_of(result: Any) -> dict[str, Any]:
    import nbformat

    from nbcellar.notebook.model import to_nbformat

    return {
        "notebook": nbformat.writes(to_nbformat(result.notebook)),
        "cells": [asdict(c) for c in result.cells],
        "kernel_name": result.kernel_name,
        "seconds": result.seconds,
        "cached": result.cached,
        "kernel_started": result.kernel_started,
        "store_failures": list(result.store_failures),
        "requirements": result.requirements,
    }


def result_of(answer: Mapping[str, Any]) -> Any:
    """The ExecutionResult a worker's answer describes."""
    from nbcellar.runs.execute import CellRun, ExecutionResult

    return ExecutionResult(
        notebook=_notebook(str(answer["notebook"])),
        cells=tuple(CellRun(**c) for c in answer["cells"]),
        kernel_name=str(answer["kernel_name"]),
        seconds=float(answer["seconds"]),
        cached=bool(answer["cached"]),
        kernel_started=bool(answer["kernel_started"]),
        store_failures=tuple(answer["store_failures"]),
        requirements=answer.get("requirements"),
    )


def _notebook(text: str) -> Any:
    import nbformat

    from nbcellar.notebook.model import from_nbformat

    return from_nbformat(nbformat.reads(text, as_version=4))


# -- on a Dask worker ----------------------------------------------------------------------


def dask_task(spec_text: str, topic: str, cancel_event: str) -> str:
    """The task a Dask worker runs: JSON in, JSON out (see :func:`execute_spec`)."""
    import importlib

    distributed: Any = importlib.import_module("distributed")
    worker = distributed.get_worker()
    spec = json.loads(spec_text)

    def report(message: dict[str, Any]) -> None:
        worker.log_event(topic, message)

    # (the event is asked from a thread of our own: it needs the worker's client named)
    event = distributed.Event(cancel_event, client=distributed.get_client())
    answer = execute_spec(spec, report, lambda: bool(event.is_set()), worker=worker.address)
    answer["worker"] = worker.address
    return json.dumps(answer)
