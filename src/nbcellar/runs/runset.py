"""``nbcellar.runs(...)``: the recorded runs as a RunSet, to query and compare in Python.

A RunSet holds runs, oldest first: recorded runs (see :mod:`nbcellar.runs.records`) or executed
notebooks collected from files (:func:`nbcellar.collect`). ``.params`` and ``.values`` are
pandas DataFrames indexed by run id (the parameters, and each logged name's or tagged output's
last plain value); ``runset["mse"]`` compares one value across the runs (see
:mod:`nbcellar.runs.comparison`), as HTML in a notebook and as text in a terminal.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError
from nbcellar.runs.comparison import Comparison, RunData

_NOT_LOADED = object()


class RecordedRun:
    """A run from the store's records: its logged values and the outputs of its tagged cells
    are loaded when a comparison first asks for them. With ``unpickle=False`` (what the
    command line's read commands use) values JSON cannot hold are not loaded but shown as
    they were when logged: a table's HTML and text, a figure's PNG, a repr."""

    def __init__(self, record: Any, store_root: Path, *, unpickle: bool = True) -> None:
        self.record = record
        self.store_root = store_root
        self.unpickle = unpickle
        self._log: Any = _NOT_LOADED
        self._outputs: Any = _NOT_LOADED
        self._steps: Any = _NOT_LOADED

    @property
    def id(self) -> str:
        return str(self.record.id)

    @property
    def params(self) -> Mapping[str, Any]:
        return dict(self.record.params)

    @property
    def values(self) -> Mapping[str, Any]:
        """Last values as the record keeps them (plain values; others as their type)."""
        return dict(self.record.outputs) | dict(self.record.values)

    @property
    def status(self) -> str:
        return str(self.record.status)

    def names(self) -> list[str]:
        return list(dict.fromkeys([*self.record.values, *self.record.outputs,
                                   *self._step_metrics()]))  # fmt: skip

    def _step_metrics(self) -> dict[str, list[Any]]:
        """The metrics of the run's checkpoints by name, step by step (a name the run also
        logged is ``checkpoint NAME``): kept as JSON, so reading them unpickles nothing."""
        if self._steps is _NOT_LOADED:
            from nbcellar.checkpointing import checkpoints_of, metric_value, segments
            from nbcellar.store import open_store

            found: dict[str, list[Any]] = {}
            if self.store_root.exists():
                store = open_store(self.store_root)
                try:
                    for part in segments(store, self.id):
                        for taken in checkpoints_of(store, part):
                            for name, value in taken.metrics.items():
                                shown = (
                                    name
                                    if name not in self.record.values
                                    else (f"checkpoint {name}")
                                )
                                found.setdefault(shown, []).append(metric_value(value))
                finally:
                    store.close()
            self._steps = found
        return dict(self._steps)

    def analyze(self, fn: Any, executor: str | None = None, jobs: int | None = None) -> Any:
        """``fn`` over the run's checkpoints, a DataFrame by step (see nbcellar.runs.analyses):
        ``run.analyze(evaluate)``, where ``def evaluate(w): return {"val_loss": ...}``."""
        from nbcellar.runs.analyses import analyze

        return analyze(self.id, self.store_root, fn, executor, jobs)

    @property
    def checkpoints(self) -> Any:
        """The run's checkpoints (nbcellar.checkpoint) as a DataFrame: step, time, metrics."""
        from nbcellar.checkpointing import checkpoints
        from nbcellar.store import open_store

        store = open_store(self.store_root)
        try:
            return checkpoints(self.id, store)
        finally:
            store.close()

    def history(self, key: str) -> list[Any]:
        if key in self.record.values:
            if self._log is _NOT_LOADED:
                from nbcellar.runs.records import load_log, shown_log
                from nbcellar.store import open_store

                store = open_store(self.store_root)
                try:
                    self._log = (load_log if self.unpickle else shown_log)(store, self.id)
                finally:
                    store.close()
            return [value for name, value in self._log if name == key]
        if key in self.record.outputs:
            if self._outputs is _NOT_LOADED:
                self._outputs = self._tagged_values()
            return [self._outputs[key]] if key in self._outputs else []
        return list(self._step_metrics().get(key, []))

    def _tagged_values(self) -> dict[str, Any]:
        from nbcellar.notebook import read_notebook
        from nbcellar.runs.outputs import tagged_outputs, value_of

        executed = self.store_root / "runs" / self.id / "executed.ipynb"
        if not executed.exists():
            return {}
        return {t: value_of(o) for t, o in tagged_outputs(read_notebook(executed)).items()}

    def __repr__(self) -> str:
        return f"<run {self.id} {self.status} {dict(self.params)}>"


class RunSet:
    """Runs (recorded, or collected notebooks), oldest first. ``runset["mse"]`` compares one
    logged value or tagged output across them (a :class:`Comparison`)."""

    def __init__(self, runs: Sequence[RunData], where: Path | str) -> None:
        self.runs = list(runs)
        self.where = where

    @property
    def records(self) -> list[Any]:
        """The run records of recorded runs."""
        return [r.record for r in self.runs if isinstance(r, RecordedRun)]

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.runs)

    def __repr__(self) -> str:
        return f"<RunSet of {len(self)} runs in {self.where}>"

    def _frame(self, rows: list[dict[str, Any]]) -> Any:
        import pandas as pd

        return pd.DataFrame(rows, index=pd.Index([r.id for r in self.runs], name="run"))

    @property
    def params(self) -> Any:
        """A DataFrame: one row per run, one column per parameter."""
        return self._frame([dict(r.params) for r in self.runs])

    @property
    def values(self) -> Any:
        """A DataFrame: one row per run, the last value of each logged name or tagged output
        that is a number or a string."""
        from nbcellar.runs.comparison import number

        rows = [
            {k: v for k, v in run.values.items() if number(v) is not None or isinstance(v, str)}
            for run in self.runs
        ]
        return self._frame(rows)

    def names(self) -> list[str]:
        """Every logged name and output tag of these runs."""
        return list(dict.fromkeys(k for r in self.runs for k in r.names()))

    def __getitem__(self, key: str) -> Any:
        """A logged name or tagged output compared across the runs; or one run, by its id."""
        chosen = [r for r in self.runs if r.id == key]
        if chosen and key not in self.names():
            return chosen[0]
        if key not in self.names():
            known = sorted(self.names())
            raise KeyError(f"no run here logged {key!r}; logged: {', '.join(known) or 'nothing'}")
        return Comparison(key, self.runs)

    def compare(self, *keys: str) -> list[Comparison]:
        """Comparisons of ``keys`` (default: everything logged or tagged)."""
        return [self[k] for k in keys or self.names()]

    def _repr_html_(self) -> str:
        from nbcellar.runs.report import runs_table_html

        return runs_table_html(self)


def _moment(value: str | float | datetime, now: float) -> float:
    """A time as seconds since the epoch: a datetime, an ISO date, seconds since the epoch,
    or a span back from now ('30m', '2h', '7d')."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
        return now - timedelta(**{units[text[-1]]: float(text[:-1])}).total_seconds()
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise NbcellarError(
            f"cannot read the time {value!r}: give a date (2026-11-21, 2026-11-21T14:00) or a "
            "span back from now (30m, 2h, 7d)"
        ) from None


def runs(
    notebook: str | Path | None = None,
    status: str | None = None,
    grid: str | None = None,
    since: str | float | datetime | None = None,
    until: str | float | datetime | None = None,
    store: str | Path | None = None,
    **params: Any,
) -> RunSet:
    """The recorded runs, oldest first: of one notebook, with one status, of one grid (``"last"``
    for the latest), started since / until a time (``since="2h"``, ``since="2026-11-21"``), and
    with the given parameter values (``runs(model="rf")``)."""
    import time

    from nbcellar.runs.records import RunBook
    from nbcellar.store import open_store
    from nbcellar.store.location import find_store_root

    root = find_store_root(store)
    found = []
    if root.exists():  # (a store not made yet holds no runs, and is not made here)
        opened = open_store(root)
        try:
            found = RunBook(opened).all()
        finally:
            opened.close()
    if notebook is not None:
        found = [r for r in found if Path(r.notebook) == Path(notebook).resolve()]
    if status is not None:
        found = [r for r in found if r.status == status]
    now = time.time()
    if since is not None:
        start = _moment(since, now)
        found = [r for r in found if (r.started or r.created) >= start]
    if until is not None:
        end = _moment(until, now)
        found = [r for r in found if (r.started or r.created) <= end]
    if grid == "last":
        grids = [r.grid for r in found if r.grid is not None]
        if not grids:
            raise NbcellarError("no grid of runs recorded yet")
        grid = grids[-1]
    if grid is not None:
        found = [r for r in found if r.grid == grid]
    for name, value in params.items():
        found = [r for r in found if r.params.get(name) == value]
    return RunSet([RecordedRun(r, root) for r in found], root)
