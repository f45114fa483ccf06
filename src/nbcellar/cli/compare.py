"""``nbcellar compare``: logged values side by side across runs, with the params that differ."""

from __future__ import annotations

import json

import click

from nbcellar.cli.context import open_context_store, store_option
from nbcellar.errors import NbcellarError
from nbcellar.runs.runset import best_rows, lower_is_better, number


@click.command()
@click.argument("run_ids", metavar="[RUN]...", nargs=-1)
@click.option("--key", "keys", multiple=True, help="Logged value to compare (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="A JSON list, one object per run.")
@store_option
@click.pass_context
def compare(
    ctx: click.Context, run_ids: tuple[str, ...], keys: tuple[str, ...], as_json: bool
) -> None:
    """Compare runs: the params that differ and the values they logged, best highlighted.

    With no RUN, the runs of the latest grid (or the latest runs of the latest notebook). The
    best value of each column is the lowest for names like loss, error, mse or time, the
    highest otherwise."""
    from rich.table import Table

    from nbcellar.cli.render import console
    from nbcellar.cli.show import find_run
    from nbcellar.runs.records import RunBook

    store = open_context_store(ctx)
    try:
        book = RunBook(store)
        if run_ids:
            chosen = [find_run(book, wanted) for wanted in run_ids]
        else:
            everything = book.all()
            if not everything:
                raise NbcellarError(f"no runs in {store.root} yet (see 'nbcellar run')")
            last = everything[-1]
            if last.grid is not None:
                chosen = [r for r in everything if r.grid == last.grid]
            else:
                chosen = [r for r in everything if r.notebook == last.notebook][-10:]
    finally:
        store.close()
    names = list(keys) or list(
        dict.fromkeys(n for r in chosen for n, v in r.values.items() if not isinstance(v, dict))
    )
    missing = [k for k in keys if not any(k in r.values for r in chosen)]
    if missing:
        raise NbcellarError(f"no run here logged {', '.join(missing)} (see 'nbcellar show RUN')")
    params = list(dict.fromkeys(p for r in chosen for p in r.params))
    varied = [p for p in params if len({repr(r.params.get(p)) for r in chosen}) > 1]
    if as_json:
        rows = [
            {"id": r.id, "params": {p: r.params.get(p) for p in varied},
             "values": {n: r.values.get(n) for n in names}, "status": r.status}
            for r in chosen
        ]  # fmt: skip
        click.echo(json.dumps(rows, indent=2, default=repr))
        return
    best = {n: best_rows([r.values.get(n) for r in chosen], n) for n in names}
    table = Table(title=f"{len(chosen)} runs compared", title_justify="left")
    for column in ("run", *varied, *names):
        table.add_column(column, overflow="fold")
    for index, record in enumerate(chosen):
        cells = []
        for name in names:
            value = record.values.get(name)
            text = (
                ""
                if value is None
                else (f"{value:.6g}" if number(value) is not None else str(value))
            )
            cells.append(f"[bold green]{text} *[/]" if index in best[name] else text)
        table.add_row(record.id[-6:], *(repr(record.params.get(p)) for p in varied), *cells)
    out = console()
    out.print(table)
    marks = [f"{n} ({'lowest' if lower_is_better(n) else 'highest'})" for n in names if best[n]]
    if marks:
        out.print("* best: " + ", ".join(marks), soft_wrap=True)
