"""``--executor dask`` and ``--executor dask://HOST:PORT``: runs on a Dask cluster.

``dask`` starts a ``distributed.LocalCluster`` of ``-j`` worker processes on this machine (one
thread each: a run is a kernel of its own) bound to 127.0.0.1; ``dask://HOST:PORT`` connects to
a running scheduler, so any Dask cluster works the same (dask-jobqueue's SLURM or PBS clusters,
Kubernetes). Each run is one task: nbcellar's entry point (:func:`nbcellar.runs.worker.dask_task`)
and the run's JSON spec, submitted in the plan's order with matching priorities; the worker runs
the notebook in a kernel of its own with the cell cache on the store, so cells that runs share
run once cluster-wide. Cells started and done come back as events on a topic of the scheduler
(``log_event``); a cancel sets a ``distributed.Event`` that the workers' runs watch and stop
their kernels for.

The workers keep the runs' records (running on which worker, the cell reached, how it ended),
so on a scheduler of the user's (``dask://``) the tasks are fire-and-forget: the runs go on,
and are recorded, after the client is gone (``nbcellar jobs`` lists them). A worker lost in
the middle of a run (killed, out of memory, a machine gone) has the scheduler start its task
on another worker: that attempt finds the run's record already started and counts it; past
``retries`` lost workers the run fails instead. Its cells completed before are restored from
the store, not run again. A scheduler that goes away ends the launch with one line, the runs
not ended marked failed.
"""

from __future__ import annotations

import contextlib
import json
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


class DaskExecutor:
    name = "dask"

    def __init__(self, address: str | None) -> None:
        self.address = address  # a scheduler's, or None: a LocalCluster of our own
        self.client: Any = None
        self.cluster: Any = None

    @property
    def detached(self) -> bool:
        """Runs go on without their client (a scheduler of the user's)."""
        return self.address is not None

    @property
    def address_text(self) -> str:
        return "dask" if self.address is None else "dask://" + self.address.removeprefix("tcp://")

    def prepare(self, plan: Plan, options: RunOptions) -> None:
        """Start the LocalCluster, or reach the scheduler (one error if it cannot be)."""
        self.connect(max(1, min(options.jobs, len(plan.runs))), options.retries)

    def connect(self, workers: int, retries: int = 1) -> Any:
        """The client of the scheduler (of a LocalCluster of ``workers`` started for it)."""
        import logging

        if self.client is not None:
            return self.client
        distributed = _distributed()
        if self.address is None:
            import dask

            # A task whose worker dies is started again elsewhere up to this many times; one
            # more than the retries, so that the last attempt can record that the run failed.
            failures = {"distributed.scheduler.allowed-failures": retries + 1}
            with dask.config.set(failures):
                self.cluster = distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
                    preload=["nbcellar.runs.own_workers"],
                )  # fmt: skip
            self.client = distributed.Client(self.cluster)
            return self.client
        try:
            # (Not the default client: builds run launches side by side, a client each.)
            self.client = distributed.Client(self.address, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            where = self.address.removeprefix("tcp://")
            raise NbcellarError(f"cannot reach the Dask scheduler at {where} ({exc}); is it "
                                "running, and is the address right?") from None  # fmt: skip
        return self.client

    def release(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    @classmethod
    def at(cls, address: str) -> DaskExecutor:
        if address == "dask":
            return cls(None)
        rest = address.removeprefix("dask://")
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit():
            raise NbcellarError(f"executor {address!r}: a scheduler is dask://HOST:PORT "
                                "(e.g. dask://127.0.0.1:8786)")  # fmt: skip
        return cls(f"tcp://{rest}")

    def start(
        self, plan: Plan, options: RunOptions, runs: RunRecords, listener: Listener
    ) -> DaskLaunch:
        return DaskLaunch(self, plan, options, runs, listener)


class DaskLaunch(LaunchBook):
    def __init__(
        self,
        executor: DaskExecutor,
        plan: Plan,
        options: RunOptions,
        runs: RunRecords,
        listener: Listener,
    ) -> None:
        import uuid

        from nbcellar.runs.worker import dask_task, make_spec, project_files

        super().__init__(plan, options, runs, listener)
        if executor.client is None:
            executor.prepare(plan, options)
        self.client = executor.client
        self._cluster = executor.cluster
        self._detached = executor.detached
        self._scheduler = executor.address
        self._closed = False
        tag = uuid.uuid4().hex[:12]
        self.topic = f"nbcellar-{tag}"
        self.cancel_name = f"nbcellar-cancel-{tag}"
        self.client.subscribe_topic(self.topic, self._heard)
        self.futures: dict[int, Any] = {}
        modules = project_files(plan)  # (for workers where the notebook's folder is not)
        for priority, position in enumerate(reversed(plan.order)):
            run = plan.runs[position]
            spec = make_spec(run, plan, options, runs.id_of(run.number), modules)
            spec["write_output"] = self._detached
            self.futures[run.number] = self.client.submit(
                dask_task, json.dumps(spec), self.topic, self.cancel_name,
                key=f"nbcellar-run-{runs.id_of(run.number) or tag}-{run.number}", pure=False,
                priority=priority,
            )  # fmt: skip
        if self._detached and runs.store_root is not None:  # (without a store, nothing to see)
            _distributed().fire_and_forget(list(self.futures.values()))

    workers_keep_records = True

    def reach(self) -> dict[str, Any]:
        if not self._detached:
            return {}
        return {"scheduler": self._scheduler, "cancel": self.cancel_name,
                "keys": [f.key for f in self.futures.values()]}  # fmt: skip

    # -- events from the workers -----------------------------------------------------------

    def _heard(self, event: Any) -> None:
        from nbcellar.runs.execute import CellRun

        _, message = event
        number = int(message["number"])
        kind = message.get("event")
        if kind == "run-started":
            self._started(number, int(message.get("attempt", 1)), message.get("worker"))
        elif kind == "cell-started":
            self.listener(CellStarted(number, int(message["index"])))
        elif kind == "cell-done":
            self.listener(CellDone(number, CellRun(**message["cell"])))

    def wait(self) -> list[RunOutcome]:
        distributed = _distributed()
        numbers = {future.key: number for number, future in self.futures.items()}
        try:
            # (On this launch's client's loop: as_completed takes the default client's
            # otherwise, another launch's in a build of tasks side by side.)
            futures = list(self.futures.values())
            for future in distributed.as_completed(futures, loop=self.client.loop):
                number = numbers[future.key]
                if future.status == "error":
                    self._failed(number, future.exception())
                elif future.cancelled():
                    if not self._cancelling:  # not by us: the scheduler went away
                        self._scheduler_lost()
                        break
                else:
                    self._answered(self.plan.runs[number - 1], json.loads(future.result()))
        except BaseException:
            self.cancel()
            raise
        finally:
            self._close()
        return self._outcomes_in_order()

    _cancelling = False

    def _failed(self, number: int, error: BaseException) -> None:
        """A task that raised: its workers were lost (KilledWorker), or nbcellar failed."""
        run = self.plan.runs[number - 1]
        if type(error).__name__ == "KilledWorker":
            lost = self.options.retries + 1
            self._lost(run, f"its worker was lost {lost} time{'s' * (lost > 1)} (the scheduler "
                            "gave up on it)")  # fmt: skip
            return
        self._lost(run, f"its task failed on the worker: {type(error).__name__}: {error}")

    def _scheduler_lost(self) -> None:
        where = (self._scheduler or "").removeprefix("tcp://") or "of the launch"
        for number, status in self.status().items():
            if status in ("queued", "running"):
                self._lost(self.plan.runs[number - 1], f"the Dask scheduler {where} went away")
        raise NbcellarError(
            f"the Dask scheduler {where} went away before the runs ended; "
            "runs not ended are marked failed ('nbcellar jobs' shows them)"
        )

    def cancel(self) -> None:
        """Runs not started never start; running ones stop their kernels."""
        self._cancelling = True
        try:
            _distributed().Event(self.cancel_name, client=self.client).set()
            self.client.cancel(list(self.futures.values()), force=True)
        except Exception:  # the scheduler is gone already
            pass
        self._cancel_left()
        self._close()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # (the scheduler is gone)
            self.client.unsubscribe_topic(self.topic)
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def cancel_on_scheduler(reach: dict[str, Any] | Any) -> None:
    """Cancel a launch of another process on its scheduler (see nbcellar.runs.jobs.cancel):
    queued tasks are dropped; running runs hear the cancel event and stop their kernels."""
    distributed = _distributed()
    where = str(reach["scheduler"]).removeprefix("tcp://")
    try:
        client = distributed.Client(reach["scheduler"], timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise NbcellarError(f"cannot reach the Dask scheduler at {where} ({exc}) to cancel "
                            "the launch; is it still running?") from None  # fmt: skip
    try:
        distributed.Event(reach["cancel"], client=client).set()
        futures = [distributed.Future(key, client=client) for key in reach.get("keys", [])]
        client.cancel(futures, force=True)
    finally:
        client.close()


def _distributed() -> Any:
    """dask.distributed (untyped: reached through Any)."""
    import importlib

    return importlib.import_module("distributed")
