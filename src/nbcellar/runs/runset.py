"""``nbcellar.runs(...)``: the recorded runs as a RunSet, to query and compare in Python.

A RunSet holds run records (see :mod:`nbcellar.runs.records`), oldest first. ``.params`` and
``.values`` are pandas DataFrames indexed by run id (the parameters, and each logged name's last
value); ``runset["mse"]`` compares one logged value across the runs: a table with only the
parameters that differ and the best value marked, shown as HTML in a notebook and as text in a
terminal.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError

_LOWER_IS_BETTER = ("loss", "err", "mse", "mae", "rmse", "time", "seconds", "cost", "regret")


def lower_is_better(name: str) -> bool:
    """Losses, errors and times are best low; anything else (accuracy, scores) best high."""
    lowered = name.lower()
    return any(word in lowered for word in _LOWER_IS_BETTER)


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def best_rows(values: list[Any], name: str) -> set[int]:
    """Indexes of the runs with the best value of ``name`` (ties all count)."""
    numbers = [(i, n) for i, v in enumerate(values) if (n := number(v)) is not None]
    if len({n for _, n in numbers}) < 2:  # nothing to choose between
        return set()
    target = (min if lower_is_better(name) else max)(n for _, n in numbers)
    return {i for i, n in numbers if n == target}


class Comparison:
    """One logged value across runs."""

    def __init__(self, key: str, records: Sequence[Any]) -> None:
        self.key = key
        self.records = list(records)
        names = list(dict.fromkeys(p for r in self.records for p in r.params))
        self.varied = [p for p in names if len({repr(r.params.get(p)) for r in self.records}) > 1]
        self.values = [r.values.get(key) for r in self.records]
        self.best = best_rows(self.values, key)
        self.lower_is_better = lower_is_better(key)

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            {p: [r.params.get(p) for r in self.records] for p in self.varied}
            | {self.key: self.values},
            index=pd.Index([r.id for r in self.records], name="run"),
        )

    def __repr__(self) -> str:
        frame = self.to_frame()
        marks = ["*" if i in self.best else "" for i in range(len(self.records))]
        frame["best"] = marks
        which = "lowest" if self.lower_is_better else "highest"
        return f"{frame.to_string()}\n* best {self.key} ({which})"

    def _repr_html_(self) -> str:
        from html import escape

        columns = ["run", *self.varied, self.key]
        head = "".join(f"<th>{escape(c)}</th>" for c in columns)
        body = []
        for position, record in enumerate(self.records):
            cells = [f"<td>{escape(record.id)}</td>"]
            cells += [f"<td>{escape(repr(record.params.get(p)))}</td>" for p in self.varied]
            value = self.values[position]
            style = ' style="font-weight:bold;background-color:#d9f2d9"'
            mark = style if position in self.best else ""
            shown = "" if value is None else escape(str(value))
            cells.append(f"<td{mark}>{shown}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        which = "lowest" if self.lower_is_better else "highest"
        return (
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"<p>best {escape(self.key)} ({which}) in bold</p>"
        )


class RunSet:
    """Run records, oldest first."""

    def __init__(self, records: Sequence[Any], store_root: Path) -> None:
        self.records = list(records)
        self.store_root = store_root

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.records)

    def __repr__(self) -> str:
        return f"<RunSet of {len(self)} runs in {self.store_root}>"

    @property
    def params(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            [dict(r.params) for r in self.records],
            index=pd.Index([r.id for r in self.records], name="run"),
        )

    @property
    def values(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            [dict(r.values) for r in self.records],
            index=pd.Index([r.id for r in self.records], name="run"),
        )

    def __getitem__(self, key: str) -> Comparison:
        if not any(key in r.values for r in self.records):
            logged = sorted({n for r in self.records for n in r.values})
            raise KeyError(f"no run here logged {key!r}; logged: {', '.join(logged) or 'nothing'}")
        return Comparison(key, self.records)


def runs(
    notebook: str | Path | None = None,
    status: str | None = None,
    grid: str | None = None,
    store: str | Path | None = None,
    **params: Any,
) -> RunSet:
    """The recorded runs, oldest first: of one notebook, with one status, of one grid (``"last"``
    for the latest), and with the given parameter values (``runs(model="rf")``)."""
    from nbcellar.runs.records import RunBook
    from nbcellar.store import open_store

    opened = open_store(store)
    try:
        found = RunBook(opened).all()
        root = Path(opened.root)
    finally:
        opened.close()
    if notebook is not None:
        found = [r for r in found if Path(r.notebook) == Path(notebook).resolve()]
    if status is not None:
        found = [r for r in found if r.status == status]
    if grid == "last":
        grids = [r.grid for r in found if r.grid is not None]
        if not grids:
            raise NbcellarError("no grid of runs recorded yet")
        grid = grids[-1]
    if grid is not None:
        found = [r for r in found if r.grid == grid]
    for name, value in params.items():
        found = [r for r in found if r.params.get(name) == value]
    return RunSet(found, root)
