"""Running notebooks: frozen options, a plan decided once, executors found by name, progress as
events, run records kept by the caller whatever executes.

``plan_runs`` turns a notebook and its parameters into a :class:`Plan`: every run's parameter
set, its notebook with the parameters injected, where its executed copy goes, whether the store
can serve it without a kernel, and the order to start the runs in (see
:mod:`nbcellar.runs.sharing`). Bad input stops there, before the store is touched.

An :class:`Executor` starts a plan and returns a :class:`Launch` (``status``, ``cancel``,
``wait``); while it runs it reports :data:`Event` values to the caller's callback (a run
started, a cell started or done, a run ended): the command line draws its progress bars from
them, a notebook could draw widgets. Executors are found by name or address in
:data:`EXECUTORS` (``local``; the cluster executors register there too), as papermill finds its
engines. :func:`launch` is what ``nbcellar.run`` and ``nbcellar run`` call.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from nbcellar.errors import NbcellarError, NbcellarWarning
from nbcellar.notebook.model import Notebook

LOST = "lost: "
"""How the error of a run that ended without an answer begins (see LaunchBook._lost)."""


class ParameterWarning(NbcellarWarning):
    """Parameters the notebook does not declare (as papermill warns)."""


@dataclass(frozen=True)
class RunOptions:
    """How each run executes (the same for every run of a plan)."""

    kernel_name: str | None = None  # default: the notebook's own
    timeout: float | None = None  # seconds a cell may run; None: no limit
    allow_errors: bool = False  # go on after a cell raises
    cwd: Path | None = None  # the kernel's working directory; default: the notebook's folder
    store_root: Path | None = None  # the cell cache and the run records; None: neither
    jobs: int = 1  # runs side by side
    retries: int = 1  # on a cluster: lost workers a run survives (it starts again elsewhere)
    resume_from: str | None = None  # a run whose checkpoints the run goes on from (--resume)
    smoke: bool = False  # its smoke test: smoke-parameters as parameters, skip-execution out

    def execution(self, cwd: Path) -> dict[str, Any]:
        """Keyword arguments of execute_notebook for one run."""
        return {
            "cwd": cwd,
            "kernel_name": self.kernel_name,
            "timeout": self.timeout,
            "allow_errors": self.allow_errors,
            "store_root": self.store_root,
            "resume_from": self.resume_from,
        }


@dataclass(frozen=True)
class PlannedRun:
    number: int  # 1, 2, ... in the order the parameters were given
    params: Mapping[str, Any]
    notebook: Notebook  # with its parameters injected
    output: Path  # where its executed notebook is written
    served: bool = False  # the store serves it without a kernel (foreseen, not promised)


@dataclass(frozen=True)
class Plan:
    source: Path  # the notebook as given
    runs: tuple[PlannedRun, ...]
    varied: tuple[str, ...]  # the parameters whose values differ between runs
    order: tuple[int, ...]  # positions in ``runs``, in the order to start them
    kernel_name: str
    cwd: Path
    folder: Path | None  # several runs: the folder of their executed notebooks

    @property
    def needs_kernel(self) -> int:
        return sum(not r.served for r in self.runs)


# -- events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunStarted:
    number: int
    record_id: str | None
    attempt: int = 1  # 2, 3...: started again, its worker lost
    worker: str | None = None  # on a cluster


@dataclass(frozen=True)
class CellStarted:
    number: int
    index: int  # among the notebook's code cells


@dataclass(frozen=True)
class CellDone:
    number: int
    cell: Any  # a nbcellar.runs.execute.CellRun


@dataclass(frozen=True)
class RunEnded:
    number: int
    status: str  # ok, failed or cancelled
    outcome: RunOutcome | None


Event = RunStarted | CellStarted | CellDone | RunEnded
Listener = Callable[[Event], None]


@dataclass(frozen=True)
class RunOutcome:
    run: PlannedRun
    result: Any  # a nbcellar.runs.execute.ExecutionResult
    record: Any = None  # its RunRecord, with a store

    @property
    def status(self) -> str:
        return "ok" if self.result.failed is None else "failed"


# -- planning ------------------------------------------------------------------------------


def default_output(path: Path) -> Path:
    """``analysis.ipynb`` -> ``analysis.out.ipynb``; scripts get an ``.ipynb`` beside them too."""
    return path.with_name(path.stem + ".out.ipynb")


def run_file_name(number: int, params: Mapping[str, Any]) -> str:
    """``003-model=rf,n=10.ipynb``: sortable, readable, safe on every file system."""
    text = ",".join(f"{k}={v}" for k, v in params.items())
    safe = "".join(ch if ch.isalnum() or ch in "=,._-" else "_" for ch in text)[:80]
    return f"{number:03d}-{safe}.ipynb" if safe else f"{number:03d}.ipynb"


def plan_runs(
    notebook: Path,
    parameter_sets: Sequence[Mapping[str, Any]],
    options: RunOptions,
    *,
    output: Path | None = None,
    strict: bool = False,
) -> Plan:
    """The runs of ``notebook``, one per parameter set (see nbcellar.runs.params.expand): its
    checks (undeclared parameters warn, or fail with ``strict``; values a cell cannot hold, a
    missing kernel, an output over the input fail) before anything runs or is written."""
    from nbcellar.notebook import read_notebook
    from nbcellar.runs import params as parameters
    from nbcellar.runs.execute import check_kernel
    from nbcellar.runs.sharing import interleave, signatures

    nb = read_notebook(notebook)
    runs = [dict(p) for p in parameter_sets] or [{}]
    names = list(dict.fromkeys(n for run in runs for n in run))
    if names and parameters.parameters_cell(nb) is None:
        message = f"{notebook} has no cell tagged 'parameters'; the values go in a cell at the top"
        if strict:
            raise parameters.ParameterError(message + " (--strict, strict=True)")
        warnings.warn(message, ParameterWarning, stacklevel=2)
    else:
        strangers = parameters.unknown(nb, dict.fromkeys(names))
        if strangers:
            declared = ", ".join(parameters.declared(nb)) or "none"
            message = (
                f"{notebook}: parameter{'s' * (len(strangers) > 1)} {', '.join(strangers)} not "
                f"assigned in the 'parameters' cell (it assigns: {declared})"
            )
            if strict:
                raise parameters.ParameterError(message + " (--strict, strict=True)")
            warnings.warn(message, ParameterWarning, stacklevel=2)
    # (Unwritable values stop here. Smoke-test cells run only in a smoke test: for_run.)
    injected = [(run, parameters.for_run(nb, run, options.smoke)) for run in runs]
    kernel_name = options.kernel_name or nb.kernel_name or "python3"
    check_kernel(kernel_name)
    cwd = options.cwd or notebook.resolve().parent
    folder = None
    if len(injected) == 1:
        outputs = [output or default_output(notebook)]
        if outputs[0].resolve() == notebook.resolve():
            raise NbcellarError(f"{outputs[0]}: the output would overwrite the input")
    else:
        folder = output or notebook.with_name(notebook.stem + ".runs")
        if folder.exists() and not folder.is_dir():
            raise NbcellarError(f"{folder} is a file; several runs need a folder for their "
                                "executed notebooks")  # fmt: skip
        outputs = [folder / run_file_name(n, p) for n, (p, _) in enumerate(injected, start=1)]
    varied = tuple(
        name for name in names if len({repr(params.get(name)) for params, _ in injected}) > 1
    )
    order = interleave(signatures(injected, varied)) if len(injected) > 1 else [0]
    pairs = zip(injected, outputs, strict=True)
    planned = tuple(
        PlannedRun(number, params, with_params, target)
        for number, ((params, with_params), target) in enumerate(pairs, start=1)
    )
    plan = Plan(notebook, planned, varied, tuple(order), kernel_name, Path(cwd), folder)
    return foresee(plan, options.store_root) if options.store_root is not None else plan


def foresee(plan: Plan, store_root: Path) -> Plan:
    """``plan`` with the runs the store at ``store_root`` can serve without a kernel marked
    (so that kernels start only for the others)."""
    from nbcellar.runs.execute import served_without_kernel

    if not store_root.exists():
        return plan
    runs = tuple(
        replace(r, served=served_without_kernel(r.notebook, plan.kernel_name, store_root,
                                                plan.cwd))
        for r in plan.runs
    )  # fmt: skip
    return replace(plan, runs=runs)


# -- executors -----------------------------------------------------------------------------


class Launch(Protocol):
    """Runs under way (see Executor.start)."""

    def status(self) -> dict[int, str]:
        """Each run's status by number: queued, running, ok, failed or cancelled."""
        ...

    def reach(self) -> dict[str, Any]:
        """How another process reaches these runs (a scheduler's address, task keys), kept in
        the launch's record; empty: they live and die with this process."""
        ...

    def cancel(self) -> None:
        """Stop every run not ended (their kernels stop; their records say cancelled)."""
        ...

    def wait(self) -> list[RunOutcome]:
        """Until every run ended: their outcomes, in plan order (a Ctrl-C cancels them)."""
        ...


class Executor(Protocol):
    name: str

    def prepare(self, plan: Plan, options: RunOptions) -> None:
        """Reach what runs the plan (a cluster's scheduler): a failure here is one error and
        nothing is written (no run record yet)."""
        ...

    def start(
        self, plan: Plan, options: RunOptions, runs: RunRecords, listener: Listener
    ) -> Launch:
        """Begin running ``plan``; ``runs`` keeps their records, ``listener`` hears events."""
        ...

    def release(self) -> None:
        """Let go of what ``prepare`` reached when no launch follows (a step between failed):
        a cluster of its own stops."""
        ...


ExecutorFactory = Callable[[str], Executor]
EXECUTORS: dict[str, ExecutorFactory] = {}
"""Executors by scheme: ``local``, ``dask`` or ``dask://HOST:PORT`` find the factory of the part
before ``://`` and give it the whole address."""


def register_executor(scheme: str, factory: ExecutorFactory) -> None:
    EXECUTORS[scheme] = factory


def executor_for(address: str | Executor | None) -> Executor:
    """The executor an address names (None: ``local``); an Executor is used as it is."""
    if address is None:
        address = "local"
    if not isinstance(address, str):
        return address
    scheme = address.partition("://")[0].strip()
    factory = EXECUTORS.get(scheme)
    if factory is None:
        known = ", ".join(sorted(EXECUTORS))
        raise NbcellarError(f"unknown executor {address!r} (known: {known})")
    return factory(address)


# -- records -------------------------------------------------------------------------------


class RunRecords:
    """The run records of a plan's runs in the store (nothing without a store). Each thread
    uses a store connection of its own. ``owned``: the runs live and die with this process
    (not so on a cluster's own scheduler: there they go on when this process is gone)."""

    def __init__(
        self,
        plan: Plan,
        store_root: Path | None,
        owned: bool = True,
        resumed_from: str | None = None,
        smoke: bool = False,
    ) -> None:
        self.plan = plan
        self.store_root = store_root
        self.records: dict[int, Any] = {}
        self.grid: str | None = None
        if store_root is None:
            return
        from nbcellar.runs.records import new_run_id

        with self.book() as book:
            if len(plan.runs) > 1:
                self.grid = "grid-" + new_run_id()
            for run in plan.runs:
                self.records[run.number] = book.create(
                    plan.source,
                    run.params,
                    self.grid,
                    plan.kernel_name,
                    owned,
                    resumed_from,
                    smoke,
                )

    @contextmanager
    def book(self) -> Iterator[Any]:
        from nbcellar.runs.records import RunBook
        from nbcellar.store import open_store

        assert self.store_root is not None
        store = open_store(self.store_root)
        try:
            yield RunBook(store)
        finally:
            store.close()

    def id_of(self, number: int) -> str | None:
        record = self.records.get(number)
        return None if record is None else str(record.id)

    def started(self, number: int) -> None:
        if number in self.records:
            with self.book() as book:
                self.records[number] = book.start(self.records[number])

    def reload(self, number: int) -> Any:
        """A run's record as its worker left it (cluster runs keep their own records)."""
        if number not in self.records:
            return None
        with self.book() as book:
            found = book.get(self.records[number].id)
        if found is not None:
            self.records[number] = found
        return self.records[number]

    def finished(self, number: int, result: Any, output: Path) -> Any:
        if number not in self.records:
            return None
        with self.book() as book:
            self.records[number] = book.finish(self.records[number], result, output)
        return self.records[number]

    def cancelled(self, numbers: Sequence[int] | None = None) -> None:
        """Runs that had not ended when everything stopped."""
        chosen = [self.records[n] for n in (numbers or list(self.records)) if n in self.records]
        if chosen:
            with self.book() as book:
                book.cancel(chosen)


# -- what every launch keeps --------------------------------------------------------------


class LaunchBook:
    """What every launch keeps of its runs, whatever executes them: each run's status, its
    outcome once it ended, its record in the store, and the events the caller hears.
    ``workers_keep_records``: the runs' workers write their records (cluster executors), so
    this keeps only what it hears."""

    workers_keep_records = False

    def __init__(
        self, plan: Plan, options: RunOptions, runs: RunRecords, listener: Listener
    ) -> None:
        self.plan = plan
        self.options = options
        self.runs = runs
        self.listener = listener
        self._status = {r.number: "queued" for r in plan.runs}
        self._lock = threading.Lock()
        self._outcomes: dict[int, RunOutcome] = {}

    def status(self) -> dict[int, str]:
        with self._lock:
            return dict(self._status)

    def reach(self) -> dict[str, Any]:
        return {}

    def _started(self, number: int, attempt: int = 1, worker: str | None = None) -> None:
        if not self.workers_keep_records:
            self.runs.started(number)
        with self._lock:
            if self._status[number] in ("ok", "failed", "cancelled"):
                return  # (a late event of a run that ended)
            self._status[number] = "running"
        self.listener(RunStarted(number, self.runs.id_of(number), attempt, worker))

    def _ended(self, run: PlannedRun, result: Any) -> RunOutcome:
        """A run's result: its executed notebook written, its record finished, the caller
        told."""
        from nbcellar.notebook import write_notebook

        run.output.parent.mkdir(parents=True, exist_ok=True)
        write_notebook(result.notebook, run.output)
        if self.workers_keep_records:
            record = self.runs.reload(run.number)
        else:
            record = self.runs.finished(run.number, result, run.output)
        outcome = RunOutcome(run, result, record)
        with self._lock:
            self._outcomes[run.number] = outcome
            self._status[run.number] = outcome.status
        self.listener(RunEnded(run.number, outcome.status, outcome))
        return outcome

    def _answered(self, run: PlannedRun, answer: Mapping[str, Any]) -> RunOutcome | None:
        """A cluster worker's answer (see nbcellar.runs.worker.execute_spec): the run's outcome,
        or None for a run cancelled."""
        from nbcellar.runs.worker import result_of

        if answer.get("status") == "skipped":  # its record said not to start
            record = answer.get("record") or {}
            if record.get("status") != "cancelled":
                return self._lost(run, str(record.get("error") or "it did not start"))
        elif answer.get("status") != "cancelled":
            return self._ended(run, result_of(answer))
        with self._lock:  # (cancelled here, or by another process: nbcellar jobs cancel)
            self._status[run.number] = "cancelled"
        return None

    def _lost(self, run: PlannedRun, why: str) -> RunOutcome:
        """A run that ended without an answer (its workers lost, the scheduler gone): failed
        at the cell it had reached, its record saying why (if its worker did not already)."""
        from nbcellar.runs.execute import CellRun, ExecutionResult

        record = self.runs.reload(run.number)
        cell = 0 if record is None or record.cell is None else int(record.cell)
        if record is not None and record.status not in ("ok", "failed", "cancelled"):
            with self.runs.book() as book:
                book.save(replace(record, status="failed", error=why, ended=time.time()))
                record = book.get(record.id)
                self.runs.records[run.number] = record
        elif record is not None and record.error:
            why = str(record.error)
        code = run.notebook.code_cells
        cell = min(cell, max(len(code) - 1, 0))
        cells = tuple(  # (what its lost attempts did is in the cache, not in this result)
            CellRun(index=i, cell_id=c.id, status="error" if i == cell else "not run",
                    seconds=0.0, error=LOST + why if i == cell else None)
            for i, c in enumerate(code)
        )  # fmt: skip
        result = ExecutionResult(
            notebook=run.notebook, cells=cells, kernel_name=self.plan.kernel_name,
            seconds=0.0, cached=False, kernel_started=False,
        )  # fmt: skip
        outcome = RunOutcome(run, result, record)
        with self._lock:
            self._outcomes[run.number] = outcome
            self._status[run.number] = "failed"
        self.listener(RunEnded(run.number, "failed", outcome))
        return outcome

    def _cancel_left(self) -> None:
        """The runs that had not ended: cancelled, in their records too."""
        left = [n for n, s in self.status().items() if s not in ("ok", "failed")]
        self.runs.cancelled(left)
        with self._lock:
            for number in left:
                self._status[number] = "cancelled"

    def _outcomes_in_order(self) -> list[RunOutcome]:
        with self._lock:
            found = [self._outcomes.get(r.number) for r in self.plan.runs]
        return [o for o in found if o is not None]


# -- the local executor --------------------------------------------------------------------


class LocalExecutor:
    """Kernels on this machine, ``jobs`` runs side by side: kernels forked from a process that
    imported their machinery once, started ahead for the runs the store cannot serve without
    one (see nbcellar.runs.pool)."""

    name = "local"

    @classmethod
    def at(cls, address: str) -> LocalExecutor:
        if address not in ("local", "local://"):
            raise NbcellarError(f"executor {address!r}: 'local' takes no address")
        return cls()

    def prepare(self, plan: Plan, options: RunOptions) -> None:
        pass

    def release(self) -> None:
        pass

    def start(
        self, plan: Plan, options: RunOptions, runs: RunRecords, listener: Listener
    ) -> LocalLaunch:
        return LocalLaunch(plan, options, runs, listener)


class LocalLaunch(LaunchBook):
    def __init__(
        self, plan: Plan, options: RunOptions, runs: RunRecords, listener: Listener
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from nbcellar.kernel import protocol
        from nbcellar.runs.execute import kernel_env
        from nbcellar.runs.pool import KernelPool

        super().__init__(plan, options, runs, listener)
        self._stopping = threading.Event()
        jobs = max(1, min(options.jobs, len(plan.runs)))
        self.jobs = jobs
        self.pool: KernelPool | None = None
        need = plan.needs_kernel  # kernels only for the runs the store cannot serve without one
        if need:  # (a pool's kernels, a single run's too, are what cancel() can stop)
            self.pool = KernelPool(
                plan.kernel_name, plan.cwd, kernel_env(options.store_root), min(jobs, need),
                need, setup=protocol.load_extension() if options.store_root is not None else "",
            )  # fmt: skip
        self._threads = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="nbcellar-run")
        self._futures = {
            position: self._threads.submit(self._one, plan.runs[position])
            for position in plan.order
        }

    def _one(self, run: PlannedRun) -> RunOutcome:
        from nbcellar.runs.execute import CellRun, execute_notebook
        from nbcellar.runs.pool import close_thread_loop

        if self._stopping.is_set():
            raise _Cancelled()
        self._started(run.number)

        def started(index: int) -> None:
            self.listener(CellStarted(run.number, index))

        def done(cell: CellRun) -> None:
            self.listener(CellDone(run.number, cell))

        pool = self.pool
        try:
            result = execute_notebook(
                run.notebook, on_cell_start=started, on_cell_done=done,
                kernel=None if pool is None else pool.take, run_id=self.runs.id_of(run.number),
                **self.options.execution(self.plan.cwd),
            )  # fmt: skip
        except Exception:
            if self._stopping.is_set():  # (waiting for a kernel when the pool closed)
                raise _Cancelled() from None
            raise
        finally:
            close_thread_loop()
        if pool is not None and not result.kernel_started and not run.served:
            pool.give_back_unused()  # foreseen to need a kernel, but served from the store
        if self._stopping.is_set():  # its kernel was stopped under it: not a failure
            raise _Cancelled()
        return self._ended(run, result)

    def cancel(self) -> None:
        """Stop everything now: queued runs never start, running kernels are stopped."""
        self._stopping.set()
        self._threads.shutdown(wait=False, cancel_futures=True)
        if self.pool is not None:
            self._close_pool()  # their kernels stop, so the runs in progress end at once
        self._threads.shutdown(wait=True)
        self._cancel_left()

    def wait(self) -> list[RunOutcome]:
        """The outcomes of the runs that ended, in plan order (after a cancel, those that
        ended before it)."""
        from concurrent.futures import CancelledError

        try:
            for position in range(len(self.plan.runs)):
                try:
                    self._futures[position].result()
                except (_Cancelled, CancelledError):
                    if not self._stopping.is_set():
                        raise
        except BaseException:  # Ctrl-C, or a run that could not start: stop the others now
            self.cancel()
            raise
        finally:
            self._threads.shutdown(wait=True)
            if self.pool is not None:
                self._close_pool()
        return self._outcomes_in_order()

    def _close_pool(self) -> None:
        """Close the pool; from a thread of the caller's (a pipeline's task), the event loop
        jupyter's calls made for that thread too."""
        from nbcellar.runs.pool import close_thread_loop

        assert self.pool is not None
        self.pool.close()
        if threading.current_thread() is not threading.main_thread():
            close_thread_loop()


class _Cancelled(Exception):
    """A run stopped because its launch was cancelled."""


register_executor("local", LocalExecutor.at)


def _dask(address: str) -> Executor:
    try:
        from nbcellar.runs.on_dask import DaskExecutor
    except ImportError:
        raise NbcellarError(f"executor {address!r} needs Dask: pip install 'nbcellar[dask]' "
                            "(dask[distributed])") from None  # fmt: skip
    return DaskExecutor.at(address)


register_executor("dask", _dask)


def _ipyparallel(address: str) -> Executor:
    import importlib.util

    if importlib.util.find_spec("ipyparallel") is None:  # (imported only once a run starts)
        raise NbcellarError(f"executor {address!r} needs ipyparallel: pip install "
                            "'nbcellar[ipp]'")  # fmt: skip
    from nbcellar.runs.on_ipyparallel import IpyparallelExecutor

    return IpyparallelExecutor.at(address)


register_executor("ipyparallel", _ipyparallel)


# -- the entry point -----------------------------------------------------------------------


@dataclass
class Launched:
    """A plan being run: its launch, its records, its plan (see :func:`launch`)."""

    plan: Plan
    options: RunOptions
    launch: Launch
    records: RunRecords
    executor: str
    outcomes: list[RunOutcome] = field(default_factory=list)

    @property
    def grid(self) -> str | None:
        return self.records.grid

    def wait(self) -> list[RunOutcome]:
        self.outcomes = self.launch.wait()
        return self.outcomes


def launch(
    plan: Plan,
    options: RunOptions,
    executor: str | Executor | None = None,
    listener: Listener | None = None,
) -> Launched:
    """Start ``plan`` on ``executor`` (default ``local``): its runs recorded in the store of
    ``options``, events to ``listener``."""
    chosen = executor_for(executor)
    with prepared(chosen, plan, options):
        records = RunRecords(plan, options.store_root,
                             owned=not getattr(chosen, "detached", False),
                             resumed_from=options.resume_from, smoke=options.smoke)  # fmt: skip
        if plan.folder is not None:  # (workers on a shared file system write there too)
            plan.folder.mkdir(parents=True, exist_ok=True)
        started = chosen.start(plan, options, records, listener or (lambda event: None))
    if options.store_root is not None:
        from nbcellar.runs.jobs import record_launch

        record_launch(options.store_root, plan, records, chosen, started.reach())
    return Launched(plan, options, started, records, chosen.name)


@contextmanager
def prepared(executor: Executor, plan: Plan, options: RunOptions) -> Iterator[None]:
    """``executor`` prepared for ``plan``; released if what follows inside fails."""
    executor.prepare(plan, options)
    try:
        yield
    except BaseException:
        executor.release()
        raise


def cpu_jobs() -> int:
    return os.cpu_count() or 1
