"""``nbcellar status``: which cells a run would restore and which it would run, and why."""

from __future__ import annotations

from pathlib import Path

import click

from nbcellar.cli.context import read_context_store, store_option

_STYLE = {"restore": "green", "run": "yellow", "always runs": "dim"}


@click.command()
@click.argument("notebook", type=click.Path(path_type=Path))
@store_option
@click.pass_context
def status(ctx: click.Context, notebook: Path) -> None:
    """Say, without running anything, which cells of NOTEBOOK would be restored from the
    cache and which would run, and why (which input changed)."""
    from rich.table import Table

    from nbcellar.cache.status import predict
    from nbcellar.cli.render import console, source_summary
    from nbcellar.notebook import read_notebook

    nb = read_notebook(notebook)
    store = read_context_store(ctx, notebook)  # (as 'nbcellar run' and its kernel find it)
    try:
        predictions = predict(nb, store, Path(store.root).parent, notebook.resolve().parent)
    finally:
        store.close()
    table = Table(title=f"{notebook}: what 'nbcellar run' would do", title_justify="left")
    for column in ("cell", "source", "would", "why"):
        table.add_column(column, overflow="fold")
    cells = nb.code_cells
    for prediction in predictions:
        style = _STYLE[prediction.action]
        table.add_row(
            f"[{prediction.index + 1}]",
            source_summary(cells[prediction.index].source, 36),
            f"[{style}]{prediction.action}[/]",
            prediction.reason,
        )
    out = console()
    out.print(table)
    restore = sum(p.action == "restore" for p in predictions)
    out.print(f"{restore} of {len(predictions)} cells would be restored", soft_wrap=True)
