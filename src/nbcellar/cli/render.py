"""Terminal rendering shared by commands: rich consoles and tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from nbcellar.notebook.model import Cell
    from nbcellar.runs.execute import CellRun

_STATUS_STYLE = {"ran": "yellow", "restored": "green", "error": "bold red", "not run": "dim"}


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


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
