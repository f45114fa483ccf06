"""``nbcellar compare``: logged values side by side across runs, with the params that differ."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from nbcellar.cli.context import read_context_store, store_option
from nbcellar.errors import NbcellarError
from nbcellar.runs.comparison import best_rows, lower_is_better, number


def chosen_runs(ctx: click.Context, run_ids: tuple[str, ...]) -> tuple[list[Any], Path]:
    """The records of the runs named (ids or unique parts of ids) and the store's folder; with
    none, the runs of the latest grid, or the latest runs of the latest notebook run."""
    from nbcellar.runs.diff import find_run
    from nbcellar.runs.records import RunBook

    store = read_context_store(ctx)
    try:
        book = RunBook(store)
        root = Path(store.root)
        if run_ids:
            return [find_run(book, wanted) for wanted in run_ids], root
        everything = book.all()
    finally:
        store.close()
    if not everything:
        raise NbcellarError(f"no runs in {root} yet (see 'nbcellar run')")
    last = everything[-1]
    if last.grid is not None:
        return [r for r in everything if r.grid == last.grid], root
    return [r for r in everything if r.notebook == last.notebook][-10:], root


def _is_wide(records: list[Any], key: str) -> bool:
    """Whether ``key`` is more than a number or a short string in some run."""
    for record in records:
        value = record.values.get(key, record.outputs.get(key))
        if isinstance(value, dict | list):
            return True
    return False


@click.command()
@click.argument("run_ids", metavar="[RUN]...", nargs=-1)
@click.option(
    "--key",
    "keys",
    multiple=True,
    help="Logged value or tagged output to compare (repeatable); dicts, tables and images "
    "are shown run by run.",
)
@click.option("--json", "as_json", is_flag=True, help="A JSON list, one object per run.")
@store_option
@click.pass_context
def compare(
    ctx: click.Context, run_ids: tuple[str, ...], keys: tuple[str, ...], as_json: bool
) -> None:
    """Compare runs: the params that differ and the values they logged or their tagged cells
    showed, best highlighted.

    With no RUN, the runs of the latest grid (or the latest runs of the latest notebook). The
    best value of each column is the lowest for names like loss, error, mse or time, the
    highest otherwise."""
    from rich.table import Table

    from nbcellar.cli.render import console
    from nbcellar.runs.runset import RecordedRun

    chosen, root = chosen_runs(ctx, run_ids)
    names = list(keys) or list(
        dict.fromkeys(
            n
            for r in chosen
            for n, v in (*r.values.items(), *r.outputs.items())
            if not isinstance(v, dict | list)
        )
    )
    missing = [k for k in keys if not any(k in r.values or k in r.outputs for r in chosen)]
    if missing:
        raise NbcellarError(f"no run here logged {', '.join(missing)} (see 'nbcellar show RUN')")
    wide = [k for k in keys if _is_wide(chosen, k)]
    if wide and not as_json:  # dicts, tables, images: each in its own layout
        from nbcellar.runs.runset import RunSet

        runset = RunSet([RecordedRun(r, root, unpickle=False) for r in chosen], root)
        for key in keys:
            console().print(repr(runset[key]), soft_wrap=True, highlight=False)
        return
    params = list(dict.fromkeys(p for r in chosen for p in r.params))
    varied = [p for p in params if len({repr(r.params.get(p)) for r in chosen}) > 1]
    if as_json:
        rows = [
            {"id": r.id, "params": {p: r.params.get(p) for p in varied},
             "values": {n: r.values.get(n, r.outputs.get(n)) for n in names},
             "status": r.status}
            for r in chosen
        ]  # fmt: skip
        click.echo(json.dumps(rows, indent=2, default=repr))
        return
    best = {n: best_rows([r.values.get(n, r.outputs.get(n)) for r in chosen], n) for n in names}
    table = Table(title=f"{len(chosen)} runs compared", title_justify="left")
    for column in ("run", *varied, *names):
        table.add_column(column, overflow="fold")
    for index, record in enumerate(chosen):
        cells = []
        for name in names:
            value = record.values.get(name, record.outputs.get(name))
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
