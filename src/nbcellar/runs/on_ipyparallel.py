"""``--executor ipyparallel`` and ``--executor ipyparallel://PROFILE``: runs on an ipyparallel
cluster.

``ipyparallel`` starts an ``ipyparallel.Cluster`` of its own for the launch: a controller and
``-j`` engines on this machine, bound to 127.0.0.1, with a temporary IPython profile directory
(so that it never meets the user's clusters); runs start once its first engine is up, and it
is stopped, every process of it, once every run answered or the launch fails or is cancelled.
``ipyparallel://PROFILE`` connects to the ipcluster running for that IPython profile
(``ipcluster start --profile PROFILE -n 4``), found by its connection file
``$IPYTHONDIR/profile_PROFILE/security/ipcontroller-client.json``; ``ipyparallel:///PATH.json``
names a connection file directly (a copy of a remote controller's ``ipcontroller-client.json``).
That cluster is the user's: nbcellar only disconnects from it. Either way the store must be
reachable by the engines under the same path (this machine, or a shared folder).

Each run is one task of a ``LoadBalancedView``: nbcellar's entry point (:func:`ipp_task`, sent
by reference) and the run's JSON spec, submitted in the plan's order; the engine runs the
notebook in a kernel of its own with the cell cache on the store (see
:mod:`nbcellar.runs.worker`), so cells that runs share run once cluster-wide. Cells started and
done come back while the run runs as the task's published data (``datapub.publish_data``), one
key per event so none is overwritten; a thread of the client turns them into events. An engine
running a task is busy, but its control channel is served by a thread of its own: a cancel marks
the queued runs' records cancelled (an engine that takes one skips it, no kernel started) and is
an ``abort`` of the launch's cancel tag, which the running tasks find in their engine's set of
aborted ids and stop their kernels for. The engines keep the run records (see
:mod:`nbcellar.runs.worker`); the parent writes each executed notebook. An engine lost in the
middle of a run (its controller says so once it missed its heartbeats) has the controller's task
scheduler start the task again on another engine (the view's ``retries``, one more than the
run's so that the last attempt can record that the run failed), so this holds with the client
gone too; that attempt counts it from the run's record, and its cells completed before are
restored from the store. Each attempt numbers its events after its attempt, so the client
follows the new one from its first.
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError
from nbcellar.runs.launch import (
    CellDone,
    CellStarted,
    LaunchBook,
    Listener,
    Plan,
    RunOptions,
    RunOutcome,
    RunRecords,
)

CONNECT_SECONDS = 10  # to reach a running controller
ENGINE_SECONDS = 60  # for the first engine to register
STOP_SECONDS = 30  # for cancelled runs to stop their kernels
HEARTBEAT_MS = 1000  # our own cluster's heartbeat period (ipyparallel's default: 3000)
POLL_SECONDS = 0.1  # how often the client looks for events and answers


class IpyparallelExecutor:
    name = "ipyparallel"

    def __init__(self, address: str, profile: str | None, connection_file: Path | None) -> None:
        self.address = address
        self.profile = profile  # a running ipcluster's profile, or None
        self.connection_file = connection_file  # its connection file; None: a cluster of our own
        self.client: Any = None
        self.cluster: Any = None
        self.profile_dir: Path | None = None  # our own cluster's, removed when it stops

    @classmethod
    def at(cls, address: str) -> IpyparallelExecutor:
        if address == "ipyparallel":
            return cls(address, None, None)
        rest = address.removeprefix("ipyparallel://")
        if rest.endswith(".json"):
            return cls(address, None, Path(rest).expanduser())
        if not rest or "/" in rest or rest != rest.strip():
            raise NbcellarError(f"executor {address!r}: a running ipcluster is "
                                "ipyparallel://PROFILE (its IPython profile, e.g. "
                                "ipyparallel://default) or ipyparallel:///PATH/"
                                "ipcontroller-client.json")  # fmt: skip
        from IPython.paths import get_ipython_dir

        security = Path(get_ipython_dir()) / f"profile_{rest}" / "security"
        return cls(address, rest, security / "ipcontroller-client.json")

    @property
    def address_text(self) -> str:
        return self.address

    @property
    def detached(self) -> bool:
        """Runs go on without their client (the ipcluster of the user's: its controller
        keeps the queued tasks, its engines the records)."""
        return self.connection_file is not None

    def release(self) -> None:
        self.close()

    def prepare(self, plan: Plan, options: RunOptions) -> None:
        """Start our own cluster, or reach the running one (one error if it cannot be)."""
        if self.client is not None:
            return
        if self.connection_file is None:
            self._start_cluster(max(1, min(options.jobs, len(plan.runs))))
        else:
            self._connect(self.connection_file)

    def _start_cluster(self, engines: int) -> None:
        import logging
        import tempfile

        ipp = _ipyparallel()
        from nbcellar.runs.own_workers import STARTUP

        self.profile_dir = Path(tempfile.mkdtemp(prefix="nbcellar-ipp-"))
        (self.profile_dir / "ipengine_config.py").write_text(
            f"c.IPEngine.startup_command = {STARTUP!r}\n", encoding="utf-8"
        )
        # The controller registers an engine at its first heartbeat: once a second rather
        # than every 3 s halves the start-up (an engine is lost after 10 missed beats).
        self.cluster = ipp.Cluster(
            n=engines, profile_dir=str(self.profile_dir), cluster_id="",
            controller_ip="127.0.0.1", engine_timeout=ENGINE_SECONDS, log_level=logging.ERROR,
            controller_args=[f"--HeartMonitor.period={HEARTBEAT_MS}"],
        )  # fmt: skip
        try:
            # Runs start once one engine is up; the others take tasks as they register.
            self.cluster.start_cluster_sync()
            self.client = self.cluster.connect_client_sync()
            self.client.wait_for_engines(1, timeout=ENGINE_SECONDS)
        except BaseException as exc:
            self.close()  # (what started of it stops)
            if isinstance(exc, Exception):
                raise NbcellarError(f"could not start an ipyparallel cluster of {engines} "
                                    f"engine(s) on this machine ({type(exc).__name__}: "
                                    f"{exc})") from None  # fmt: skip
            raise

    def _connect(self, connection_file: Path) -> None:
        if self.profile is not None:
            where = f"IPython profile {self.profile!r}"
            start = f"start it with `ipcluster start --profile {self.profile} -n 4`"
            found = f", with {connection_file}"
            if not connection_file.is_file():
                raise NbcellarError(f"no ipcluster runs for {where} (no {connection_file}); "
                                    f"{start}")  # fmt: skip
        else:
            where = str(connection_file)
            start = "(its controller rewrites that file each time it starts)"
            found = ""
            if not connection_file.is_file():
                raise NbcellarError(f"no connection file {connection_file}: a running "
                                    "controller's ipcontroller-client.json; is the path "
                                    "right?")  # fmt: skip
        ipp = _ipyparallel()
        try:
            client = ipp.Client(str(connection_file), timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError, ValueError, KeyError) as exc:
            why = str(exc) or type(exc).__name__
            raise NbcellarError(f"cannot reach the ipcluster of {where} ({why}{found}); is "
                                f"it running? {start}") from None  # fmt: skip
        try:
            client.wait_for_engines(1, timeout=ENGINE_SECONDS)
        except TimeoutError:
            client.close()
            raise NbcellarError(f"the ipcluster of {where} has no engines (waited "
                                f"{ENGINE_SECONDS} s); start some with `ipcluster engines"
                                f"{'' if self.profile is None else ' --profile ' + self.profile}"
                                " -n 4`") from None  # fmt: skip
        self.client = client

    def start(
        self, plan: Plan, options: RunOptions, runs: RunRecords, listener: Listener
    ) -> IpyparallelLaunch:
        return IpyparallelLaunch(self, plan, options, runs, listener)

    def close(self) -> None:
        """Disconnect; stop our own cluster (its controller and engines) and remove its
        profile directory."""
        import shutil

        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            _stop_cluster(cluster)
        if self.profile_dir is not None:
            shutil.rmtree(self.profile_dir, ignore_errors=True)
            self.profile_dir = None


class IpyparallelLaunch(LaunchBook):
    def __init__(
        self,
        executor: IpyparallelExecutor,
        plan: Plan,
        options: RunOptions,
        runs: RunRecords,
        listener: Listener,
    ) -> None:
        import functools
        import uuid

        from nbcellar.runs.worker import make_spec, project_files

        super().__init__(plan, options, runs, listener)
        modules = project_files(plan)  # (for engines where the notebook's folder is not)
        if executor.client is None:
            executor.prepare(plan, options)
        self.executor = executor
        self.client = executor.client
        self.cancel_tag = f"nbcellar-cancel-{uuid.uuid4().hex[:12]}"
        self._stopping = threading.Event()
        self._closed = False
        self._failure: Exception | None = None  # what stops the launch (wait() raises it)
        self._heard: dict[int, set[str]] = {}  # events taken from each run's published data
        self._finished: set[int] = set()
        view = self.client.load_balanced_view()
        # A task whose engine died is started again on another by the controller (not by us:
        # so it is with the client gone): one more than the retries, for the last attempt to
        # record that the run failed.
        view.retries = options.retries + 1
        self._view = view
        # A partial is pickled by reference (module and name), where ipyparallel would ship a
        # bare function's code object: the engines import nbcellar's own entry point.
        self._task = functools.partial(ipp_task)
        self.results: dict[int, Any] = {}
        for position in plan.order:
            run = plan.runs[position]
            spec = make_spec(run, plan, options, runs.id_of(run.number), modules)
            spec["write_output"] = executor.detached  # (its client may be gone by then)
            self._heard[run.number] = set()
            self.results[run.number] = view.apply_async(self._task, json.dumps(spec),
                                                        self.cancel_tag)  # fmt: skip
        self._follower = threading.Thread(target=self._follow, daemon=True,
                                          name="nbcellar-ipp-follow")  # fmt: skip
        self._follower.start()

    # -- events and answers from the engines ----------------------------------------------

    def _follow(self) -> None:
        """Until every run answered or the launch stops: events to the listener, answers to
        the records. Once all answered, our own cluster stops (without waiting for wait())."""
        try:
            while not self._stopping.is_set():
                waiting = False
                for number, result in self.results.items():
                    if number in self._finished:
                        continue
                    if result.ready():
                        self._result(number, result)
                        if self._failure is not None:
                            return
                    else:
                        self._take_events(number, result)
                        waiting = True
                if not waiting:
                    self._close()
                    return
                self._stopping.wait(POLL_SECONDS)
        except Exception as exc:  # (the store, or a listener, failed: wait() raises it)
            self._failure = exc

    def _take_events(self, number: int, result: Any) -> None:
        from nbcellar.runs.execute import CellRun

        data = result["data"]
        heard = self._heard[number]
        for key in sorted(set(data) - heard):  # (attempt, then order sent)
            heard.add(key)
            message = data[key]
            kind = message.get("event")
            if kind == "run-started":
                self._started(number, int(message.get("attempt", 1)), message.get("worker"))
            elif kind == "cell-started":
                self.listener(CellStarted(number, int(message["index"])))
            elif kind == "cell-done":
                self.listener(CellDone(number, CellRun(**message["cell"])))

    workers_keep_records = True

    def reach(self) -> dict[str, Any]:
        """For another process: the controller's connection file, the tasks, the cancel tag
        (see cancel_on_controller); nothing for a cluster of our own, gone with us."""
        if not self.executor.detached:
            return {}
        tasks = [i for result in self.results.values() for i in result.msg_ids]
        return {"ipyparallel": str(self.executor.connection_file), "tasks": tasks,
                "cancel": self.cancel_tag}  # fmt: skip

    def _result(self, number: int, result: Any) -> None:
        result.wait_for_output(5)  # the events published before the answer
        self._take_events(number, result)
        if self._stopping.is_set():
            return
        try:
            answer = json.loads(result.get(timeout=0))
        except Exception as exc:  # the task raised on its engine, or its engine died
            if self._cancelled_elsewhere(number):
                return
            self._finished.add(number)
            self._lost(self.plan.runs[number - 1], f"it failed on its ipyparallel engine: "
                                                  f"{_remote_error(exc)}")  # fmt: skip
            return
        self._finished.add(number)
        self._answered(self.plan.runs[number - 1], answer)

    def _cancelled_elsewhere(self, number: int) -> bool:
        """A task that failed (its engine stopped) for a run that another process cancelled
        (``nbcellar jobs cancel``): the run ends cancelled here too."""
        record = self.runs.reload(number)
        if record is None or record.status != "cancelled":
            return False
        self._finished.add(number)
        with self._lock:
            self._status[number] = "cancelled"
        return True

    # -- the Launch ---------------------------------------------------------------------------

    def wait(self) -> list[RunOutcome]:
        try:
            while self._follower.is_alive():
                self._follower.join(0.2)  # (in steps, so that a Ctrl-C is heard)
            if self._failure is not None:
                raise self._failure
        except BaseException:
            self.cancel()
            raise
        finally:
            self._close()
        return self._outcomes_in_order()

    def cancel(self) -> None:
        """Runs not started never start; running ones stop their kernels."""
        self._stopping.set()
        if self._follower is not threading.current_thread():
            self._follower.join()
        left = [n for n in self.results if n not in self._finished]
        # The queued runs' records first: an engine that takes one skips it at once.
        queued = [n for n, s in self.status().items() if n in left and s == "queued"]
        self.runs.cancelled(queued)
        if left and not self._closed:
            with contextlib.suppress(Exception):  # (the controller is gone)
                self._abort([self.results[n] for n in left])
        self._cancel_left()
        self._close()

    def _abort(self, left: list[Any]) -> None:
        """Tell every engine, those that register meanwhile too, the launch's cancel tag,
        until the runs ``left`` all answered: running kernels stop within a second, queued
        tasks skip their cancelled runs, and our own cluster stops after them. (Not an abort
        of the tasks themselves: the controller would start an aborted task again, as one
        whose engine failed it, for the view's retries.)"""
        import time

        told: set[int] = set()
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline:
            engines = [e for e in self.client.ids if e not in told]
            if engines:
                self.client.abort([self.cancel_tag], targets=engines, block=False)
                told.update(engines)
            if self.client.wait(left, timeout=0.5):
                return

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.executor.close()


def cancel_on_controller(reach: dict[str, Any] | Any) -> None:
    """From any process: tell the engines of the ipcluster that runs a launch its cancel tag
    (running runs find it aborted and stop their kernels; queued ones, their records already
    cancelled, are skipped by the engine that takes them)."""
    ipp = _ipyparallel()
    where = str(reach["ipyparallel"])
    try:
        client = ipp.Client(where, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError, KeyError) as exc:
        raise NbcellarError(f"cannot reach the ipcluster of {where} ({exc or type(exc).__name__}"
                            ") to cancel the launch; is it running?") from None  # fmt: skip
    try:
        client.abort([str(reach["cancel"])], targets=client.ids, block=True)
    finally:
        client.close()


def ipp_task(spec_text: str, cancel_tag: str) -> str:
    """The task an ipyparallel engine runs: JSON in, JSON out (see
    :func:`nbcellar.runs.worker.execute_spec`); events go out as the task's published data,
    keyed by attempt and number so that none replaces another, an earlier attempt's
    included (the controller may start the task again, under the same id)."""
    import importlib
    import itertools

    from IPython import get_ipython

    from nbcellar.runs.worker import execute_spec

    publish_data = importlib.import_module("ipyparallel.datapub").publish_data
    kernel = get_ipython().kernel
    spec = json.loads(spec_text)
    numbers = itertools.count()
    lock = threading.Lock()
    attempt = [1]  # (said by the first event, "run-started")

    def report(message: dict[str, Any]) -> None:
        with lock:  # numbered in the order sent
            attempt[0] = int(message.get("attempt", attempt[0]))
            publish_data({f"{attempt[0]:03d}-{next(numbers):06d}": message})

    def cancelled() -> bool:
        # The engine's control thread adds aborted ids while its shell runs this task.
        return cancel_tag in kernel.aborted

    worker = f"engine {kernel.engine_id}"
    answer = execute_spec(spec, report, cancelled, worker=worker)
    answer["worker"] = worker
    return json.dumps(answer)


def _stop_cluster(cluster: Any) -> None:
    """Stop our own cluster and wait until every process of it is gone: the controller and
    its schedulers, the engines, their nannies (which outlive their engine by a moment) and
    any kernel an engine still had."""
    import importlib

    psutil: Any = importlib.import_module("psutil")  # (ipyparallel's own dependency; untyped)

    pids = [] if cluster.controller is None else [cluster.controller.pid]
    for engine_set in cluster.engines.values():
        pids.extend(launcher.pid for launcher in getattr(engine_set, "launchers", {}).values())
    processes = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            processes.extend([process, *process.children(recursive=True)])
    with contextlib.suppress(Exception):
        cluster.stop_cluster_sync()
    # A nanny spends seconds telling the stopped controller that its engine ended: once both
    # are gone it has nothing left to do, and neither has a stray kernel.
    _, alive = psutil.wait_procs(processes, timeout=0.5)
    for stop, seconds in (("terminate", 0.5), ("kill", 5)):
        for process in alive:
            with contextlib.suppress(psutil.Error):
                getattr(process, stop)()
        _, alive = psutil.wait_procs(alive, timeout=seconds)


def _remote_error(exc: BaseException) -> str:
    """One line for what went wrong on an engine."""
    name = getattr(exc, "ename", None) or type(exc).__name__
    value = getattr(exc, "evalue", None) or str(exc)
    hint = ""
    if name in ("ModuleNotFoundError", "ImportError") and "nbcellar" in value:
        hint = " (is nbcellar installed where the engines run?)"
    return f"{name}: {value}{hint}"


def _ipyparallel() -> Any:
    """ipyparallel (untyped: reached through Any)."""
    import importlib

    return importlib.import_module("ipyparallel")
