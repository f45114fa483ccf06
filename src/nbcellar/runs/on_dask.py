"""``--executor dask`` and ``--executor dask://HOST:PORT``: runs on a Dask cluster.

``dask`` starts a ``distributed.LocalCluster`` of ``-j`` worker processes on this machine (one
thread each: a run is a kernel of its own) bound to 127.0.0.1; ``dask://HOST:PORT`` connects to
a running scheduler, so any Dask cluster works the same (dask-jobqueue's SLURM or PBS clusters,
Kubernetes). Each run is one task: nbcellar's entry point (:func:`nbcellar.runs.worker.dask_task`)
and the run's JSON spec, submitted in the plan's order with matching priorities; the worker runs
the notebook in a kernel of its own with the cell cache on the store, so cells that runs share
run once cluster-wide. Cells started and done come back as events on a topic of the scheduler
(``log_event``); a cancel sets a ``distributed.Event`` that the workers' runs watch and stop
their kernels for. The parent writes each executed notebook and keeps the run records.
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

    def prepare(self, plan: Plan, options: RunOptions) -> None:
        """Start the LocalCluster, or reach the scheduler (one error if it cannot be)."""
        import logging

        if self.client is not None:
            return
        distributed = _distributed()
        if self.address is None:
            workers = max(1, min(options.jobs, len(plan.runs)))
            self.cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, silence_logs=logging.ERROR,
            )  # fmt: skip
            self.client = distributed.Client(self.cluster)
            return
        try:
            self.client = distributed.Client(self.address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            where = self.address.removeprefix("tcp://")
            raise NbcellarError(f"cannot reach the Dask scheduler at {where} ({exc}); is it "
                                "running, and is the address right?") from None  # fmt: skip

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

        from nbcellar.runs.worker import dask_task, make_spec

        super().__init__(plan, options, runs, listener)
        if executor.client is None:
            executor.prepare(plan, options)
        self.client = executor.client
        self._cluster = executor.cluster
        self._closed = False
        tag = uuid.uuid4().hex[:12]
        self.topic = f"nbcellar-{tag}"
        self.cancel_name = f"nbcellar-cancel-{tag}"
        self.client.subscribe_topic(self.topic, self._heard)
        self.futures: dict[int, Any] = {}
        for priority, position in enumerate(reversed(plan.order)):
            run = plan.runs[position]
            spec = make_spec(run, plan, options, runs.id_of(run.number))
            self.futures[run.number] = self.client.submit(
                dask_task, json.dumps(spec), self.topic, self.cancel_name,
                key=f"nbcellar-run-{runs.id_of(run.number) or tag}-{run.number}", pure=False,
                priority=priority,
            )  # fmt: skip

    # -- events from the workers -----------------------------------------------------------

    def _heard(self, event: Any) -> None:
        from nbcellar.runs.execute import CellRun

        _, message = event
        number = int(message["number"])
        kind = message.get("event")
        if kind == "run-started":
            self._started(number)
        elif kind == "cell-started":
            self.listener(CellStarted(number, int(message["index"])))
        elif kind == "cell-done":
            self.listener(CellDone(number, CellRun(**message["cell"])))

    def _answered(self, number: int, answer_text: str) -> RunOutcome:
        from nbcellar.runs.worker import result_of

        return self._ended(self.plan.runs[number - 1], result_of(json.loads(answer_text)))

    def wait(self) -> list[RunOutcome]:
        as_completed = _distributed().as_completed
        numbers = {future.key: number for number, future in self.futures.items()}
        try:
            for future in as_completed(list(self.futures.values())):
                if future.cancelled():
                    continue
                self._answered(numbers[future.key], future.result())
        except BaseException:
            self.cancel()
            raise
        finally:
            self._close()
        return self._outcomes_in_order()

    def cancel(self) -> None:
        """Runs not started never start; running ones stop their kernels."""
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


def _distributed() -> Any:
    """dask.distributed (untyped: reached through Any)."""
    import importlib

    return importlib.import_module("distributed")
