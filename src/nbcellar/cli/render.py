"""Terminal rendering shared by commands: rich consoles and tables."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from nbcellar.notebook.model import Cell
    from nbcellar.runs.execute import CellRun

_STATUS_STYLE = {"ran": "yellow", "restored": "green", "error": "bold red", "not run": "dim"}


# Columns holding what a user copies to type it again: never cut, never wrapped.
_WHOLE = frozenset({"id", "run", "cell"})


def console(stderr: bool = False) -> Console:
    """A console for a command's output. At a terminal, tables fit its width by wrapping
    cells (ids are never cut); elsewhere (a pipe, a file) they are plain text without borders,
    as wide as their content."""
    import os

    from rich.console import Console
    from rich.table import Table

    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()

    class Fitting(Console):
        def print(self, *objects: Any, **kwargs: Any) -> None:
            for each in objects:
                if isinstance(each, Table):
                    _fit(each, plain=not terminal)
                    if terminal:
                        _narrow(self, each)
            super().print(*objects, **kwargs)

    width = None if terminal else max(int(os.environ.get("COLUMNS", "0") or 0), 4096)
    return Fitting(stderr=stderr, highlight=False, width=width)


# What goes first when a table is wider than the terminal (then what comes last in it).
_LEFT_OUT_FIRST = ("started", "saved", "seconds", "ran/restored", "notebook", "why", "source")


def _narrow(console: Console, table: Table) -> None:
    """Fit a table too wide for the terminal: lighter borders, then columns left out (said
    in its caption), never a cell cut."""
    from rich import box

    def too_wide() -> bool:
        return _least_width(table) > console.width

    if not too_wide():
        return
    table.box = box.SIMPLE_HEAD
    table.show_edge = False
    left_out: list[str] = []
    while too_wide() and len(table.columns) > 1:
        names = [str(c.header) for c in table.columns]
        order = [n for n in _LEFT_OUT_FIRST if n in names] + names[:0:-1]
        table.columns.pop(names.index(order[0]))
        left_out.append(order[0])
    if left_out:
        table.caption = f"(left out at this width: {', '.join(left_out)})"
        table.caption_justify = "left"


def _least_width(table: Table) -> int:
    """The narrowest a table can be with no cell cut: whole cells in no-wrap columns, the
    longest word elsewhere, plus padding and borders."""
    from rich.text import Text

    def plain(cell: Any) -> str:
        return Text.from_markup(cell).plain if isinstance(cell, str) else str(cell)

    total = 0
    for column in table.columns:
        texts = [plain(c) for c in column.cells] + [str(column.header)]
        if column.no_wrap:
            need = max(len(line) for t in texts for line in [*t.splitlines(), ""])
        else:
            need = max(len(word) for t in texts for word in [*t.split(), ""])
        total += max(need, column.min_width or 0) + 2  # (padding)
    if table.box is not None and table.box.mid_vertical.strip():
        total += len(table.columns) + 1
    return total


def _fit(table: Table, plain: bool) -> None:
    if plain:
        table.box = None
        table.show_edge = False
        table.pad_edge = False
    for column in table.columns:
        if str(column.header) in _WHOLE:
            cells = [len(str(c)) for c in column.cells]
            column.no_wrap = True
            column.min_width = max([len(str(column.header)), *cells])
        elif column.overflow == "ellipsis":
            column.overflow = "fold"


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """A compact chart of ``values`` in one line of text (at most ``width`` characters: longer
    series are averaged into that many buckets)."""
    import math

    numbers = [float(v) for v in values if math.isfinite(float(v))]
    if len(numbers) < 2:
        return ""
    if len(numbers) > width:
        size = len(numbers) / width
        numbers = [
            sum(chunk) / len(chunk)
            for k in range(width)
            if (chunk := numbers[int(k * size) : max(int((k + 1) * size), int(k * size) + 1)])
        ]
    low, high = min(numbers), max(numbers)
    span = (high - low) or 1.0
    return "".join(SPARKS[min(int((v - low) / span * len(SPARKS)), len(SPARKS) - 1)]
                   for v in numbers)  # fmt: skip


def source_summary(source: str, width: int) -> str:
    """The first non-blank line of a cell, cut to ``width`` characters."""
    line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def cell_table(cells: Sequence[Cell], runs: Sequence[CellRun]) -> Table:
    from rich.table import Table

    table = Table(title="cells", title_justify="left")
    table.add_column("cell", justify="right")
    table.add_column("source")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    table.add_column("saved", justify="right")
    for cell, run in zip(cells, runs, strict=True):
        style = _STATUS_STYLE.get(run.status, "")
        status = run.status if run.error is None else f"{run.status}: {run.error}"
        table.add_row(
            f"[{run.index + 1}]",
            source_summary(cell.source, 48),
            f"[{style}]{status}[/]",
            f"{run.seconds:.2f}",
            f"{run.saved_seconds:.2f}" if run.status == "restored" else "",
        )
    return table
