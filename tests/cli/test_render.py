"""Tables as a user reads them: whole ids at any terminal width, plain text through a pipe."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from nbcellar.cli.render import _fit, _narrow

IDS = [f"20261201-1758{n:02d}-b94b5{n}" for n in range(3)]


def runs_table() -> Table:
    table = Table(title="3 runs", title_justify="left")
    for column in ("id", "notebook", "params", "status", "started", "seconds", "ran/restored"):
        table.add_column(column, overflow="fold", no_wrap=column in ("id", "started"))
    for ident in IDS:
        table.add_row(
            ident, "train.ipynb", "alpha=1 model='ridge'", "ok", "12-01 17:58", "1.3", "2/0"
        )
    return table


def shown(width: int, plain: bool) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=not plain, color_system=None)
    table = runs_table()
    _fit(table, plain)
    if not plain:
        _narrow(console, table)
    console.print(table)
    return out.getvalue()


def test_a_narrow_terminal_leaves_columns_out_and_never_cuts_an_id() -> None:
    text = shown(60, plain=False)
    assert all(ident in text for ident in IDS)
    assert "…" not in text
    assert "left out at this width: started" in text
    assert max(len(line) for line in text.splitlines()) <= 60


def test_a_wide_terminal_shows_every_column() -> None:
    text = shown(160, plain=False)
    assert "ran/restored" in text
    assert "12-01 17:58" in text
    assert "left out" not in text


def test_through_a_pipe_tables_are_plain_text() -> None:
    text = shown(4096, plain=True)
    assert not set(text) & set("│┃━─┏")
    rows = [line.split() for line in text.splitlines() if line.startswith("2026")]
    assert [row[0] for row in rows] == IDS
    assert rows[0][-1] == "2/0"


def test_the_grid_summary_lists_every_cell() -> None:
    from types import SimpleNamespace

    from nbcellar.cli.run import shared_cells_summary
    from nbcellar.notebook.model import Cell, Notebook

    nb = Notebook((Cell("code", "data = load()"), Cell("code", "fit(data, alpha)")))

    def result(*statuses: str) -> SimpleNamespace:
        return SimpleNamespace(cells=[SimpleNamespace(status=s) for s in statuses])

    lines = shared_cells_summary(nb, [result("ran", "ran"), result("restored", "ran")])
    assert lines == [
        "cell [1] data = load()  ran 1 time, restored in 1 run",
        "cell [2] fit(data, alpha)  ran 2 times (in every run)",
    ]
