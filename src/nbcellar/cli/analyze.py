"""``nbcellar analyze``: what each cell reads, writes and mutates, and what depends on it."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import click


@click.command()
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON.")
def analyze(notebook: Path, as_json: bool) -> None:
    """Show, without running anything, the names each cell of NOTEBOOK reads, writes and
    may mutate, and which cells depend on which. Builtins are left out of the table unless a
    cell rebinds them; --json lists every name."""
    from rich.table import Table

    from nbcellar.analysis import analyze_notebook
    from nbcellar.cli.render import console, source_summary
    from nbcellar.notebook import read_notebook

    result = analyze_notebook(read_notebook(notebook))
    graph = result.graph
    rows: list[dict[str, Any]] = []
    for node, (cell, analysis) in enumerate(zip(result.cells, result.analyses, strict=True)):
        rows.append(
            {
                "cell": node + 1,
                "id": cell.id,
                "code_hash": analysis.code_hash,
                "reads": sorted(analysis.reads),
                "writes": sorted(analysis.writes),
                "mutated": sorted(analysis.mutated),
                "depends_on": sorted(p + 1 for p in graph.parents[node]),
                "downstream": sorted(d + 1 for d in graph.downstream(node)),
                "writes_unknown": analysis.writes_unknown,
                "syntax_error": analysis.syntax_error,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return

    # Builtins (print, len, ...) are reads too, but only worth showing when a cell rebinds one.
    written = set().union(*(a.writes for a in result.analyses))
    hidden = set(dir(builtins)) - written

    def names(values: list[str]) -> str:
        shown = [v for v in values if v not in hidden]
        return ", ".join(shown) if shown else "-"

    table = Table(title=f"{notebook}: {len(rows)} code cells", title_justify="left")
    for column in ("cell", "source", "reads", "writes", "may mutate", "depends on"):
        table.add_column(column, overflow="fold")
    for row, cell in zip(rows, result.cells, strict=True):
        writes = names(row["writes"]) + (" + unknown (import *)" if row["writes_unknown"] else "")
        table.add_row(
            f"[{row['cell']}]",
            source_summary(cell.source, 32),
            f"syntax error: {row['syntax_error']}" if row["syntax_error"] else names(row["reads"]),
            writes,
            names(row["mutated"]),
            names([f"[{d}]" for d in row["depends_on"]]),
        )
    console().print(table)
