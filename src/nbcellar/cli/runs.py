"""``nbcellar runs``: the runs recorded in the store, as a table or as JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from nbcellar.cli.context import read_context_store, store_option
from nbcellar.runs.where import parse_condition

_STYLE = {"ok": "green", "failed": "bold red", "running": "yellow", "queued": "dim",
          "cancelled": "magenta", "died": "bold red"}  # fmt: skip


@click.command()
@click.option("--notebook", "notebook", type=click.Path(path_type=Path), help="Only this notebook.")
@click.option(
    "--status",
    type=click.Choice(["queued", "running", "ok", "failed", "cancelled", "died"]),
    help="Only runs with this status.",
)
@click.option(
    "--where",
    "conditions",
    multiple=True,
    metavar="COND",
    help="Only runs where a parameter or logged value compares: alpha=1, mse<0.5, "
    "model!=rf (=, !=, <, <=, >, >=; repeatable, all must hold).",
)
@click.option("--last", type=click.IntRange(min=1), help="Only the N most recent runs.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of runs instead of a table.")
@store_option
@click.pass_context
def runs(
    ctx: click.Context,
    notebook: Path | None,
    status: str | None,
    conditions: tuple[str, ...],
    last: int | None,
    as_json: bool,
) -> None:
    """List the runs recorded by 'nbcellar run': parameters, status, timings, cells."""
    from nbcellar.cli.render import console
    from nbcellar.runs.params import short_label
    from nbcellar.runs.records import RunBook

    store = read_context_store(ctx)
    try:
        found = RunBook(store).all()
    finally:
        store.close()
    if notebook is not None:
        found = [r for r in found if Path(r.notebook) == notebook.resolve()]
    if status is not None:
        found = [r for r in found if r.status == status]
    for condition in conditions:
        test = parse_condition(condition)
        found = [r for r in found if test(r)]
    if last is not None:
        found = found[-last:]
    if as_json:
        click.echo(json.dumps([r.to_json() for r in found], indent=2, default=repr))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{len(found)} runs in {store.root}", title_justify="left")
    widths = {"notebook": 8, "params": 8, "status": 6}
    for column in ("id", "notebook", "params", "status", "started", "seconds", "ran/restored"):
        justify = "right" if column in ("seconds", "ran/restored") else "left"
        table.add_column(
            column,
            justify=justify,  # type: ignore[arg-type]
            overflow="fold",
            no_wrap=column not in widths,  # ids and times stay whole
            min_width=widths.get(column),
        )
    for record in found:
        style = _STYLE.get(record.status, "")
        started = record.started or record.created
        cells = record.cells
        table.add_row(  # (what runs wrote is text, not rich markup: "fit[k=1]" stays whole)
            record.id,
            escape(Path(record.notebook).name) + (" (smoke)" if record.smoke else ""),
            escape(short_label(record.params)),
            f"[{style}]{record.status}[/]" + (f": {escape(record.error)}" if record.error else ""),
            time.strftime("%m-%d %H:%M", time.localtime(started)),
            "" if record.seconds is None else f"{record.seconds:.1f}",
            f"{cells['ran']}/{cells['restored']}" if cells else "",
        )
    console().print(table)
