"""``nbcellar show RUN``: one recorded run in full."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from nbcellar.cli.context import read_context_store, store_option
from nbcellar.runs.diff import find_run


def _summary(values: list[Any]) -> str:
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(values) == 1:
        return ""
    if len(numbers) == len(values):
        return (
            f"{len(values)} values, first {values[0]:g}, min {min(numbers):g}, max {max(numbers):g}"
        )
    return f"{len(values)} values"


@click.command()
@click.argument("run_id", metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="The record and its logged values as JSON.")
@click.option("--requirements", is_flag=True, help="Only the pinned requirements of what the "
              "run imported (name==version lines, for requirements.txt).")  # fmt: skip
@store_option
@click.pass_context
def show(ctx: click.Context, run_id: str, as_json: bool, requirements: bool) -> None:
    """Show one run: parameters, status, timings, cells, logged values, environment, source.

    RUN is a run id from 'nbcellar runs', or any unique start or end of one."""
    from rich.table import Table

    from nbcellar.cli.render import console
    from nbcellar.runs.records import LOG_KIND, RunBook

    store = read_context_store(ctx)
    try:
        book = RunBook(store)
        record = find_run(book, run_id)
        found = store.get_record(LOG_KIND, record.id)
        rows = json.loads(found.payload)["rows"] if found is not None else []
        folder = book.folder(record.id)
        executed = folder / "executed.ipynb"
        from nbcellar.checkpointing import checkpoints

        steps = checkpoints(record.id, store)
    finally:
        store.close()
    if requirements:
        from nbcellar.runs.records import pinned

        click.echo(pinned(record), nl=False)
        return
    histories: dict[str, list[Any]] = {}
    for name, cell in rows:
        number = (cell.get("shown") or {}).get("number")
        shown = cell["value"] if "value" in cell else f"<{cell.get('type')}>"
        histories.setdefault(name, []).append(number if number is not None else shown)
    if as_json:
        data = record.to_json() | {"histories": histories, "executed": str(executed),
                                   "checkpoints": steps.to_dict("records")}  # fmt: skip
        click.echo(json.dumps(data, indent=2, default=repr))
        return
    out = console()
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.started or record.created))
    lines = [
        f"run {record.id}: {record.status}" + (f" ({record.error})" if record.error else ""),
        f"notebook   {record.notebook}",
        f"params     {json.dumps(dict(record.params))}",
        f"started    {when}" + (f", {record.seconds:.2f} s" if record.seconds is not None else ""),
    ]
    if record.cells:
        cells = record.cells
        lines.append(
            f"cells      {cells['total']}: {cells['ran']} ran, {cells['restored']} restored, "
            f"{cells['error']} failed"
        )
    if record.grid:
        lines.append(f"grid       {record.grid}")
    env = record.environment
    if env:
        packages = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items())
        lines.append(f"python     {env.get('python')} ({packages})")
    source = record.source
    if source.get("git_commit"):
        dirty = " with uncommitted changes" if source.get("git_dirty") else ""
        lines.append(f"git        {source['git_commit'][:12]}{dirty}")
    modules = source.get("modules") or {}
    if modules:
        lines.append(f"modules    {', '.join(modules)} (as run: {folder / 'source'})")
    lines.append(f"executed   {executed if Path(executed).exists() else record.output}")
    if record.artifacts:
        shown = ", ".join(record.artifacts[:8]) + (" …" if len(record.artifacts) > 8 else "")
        lines.append(f"artifacts  {folder / 'artifacts'}: {shown}")
    if record.outputs:
        outputs = ", ".join(
            f"{tag}={value if not isinstance(value, dict) else '<' + value['type'] + '>'}"
            for tag, value in record.outputs.items()
        )
        lines.append(f"outputs    {outputs}")
    for line in lines:
        out.print(line, soft_wrap=True, highlight=False)
    if histories:
        table = Table(title="logged values", title_justify="left")
        for column in ("name", "last", "history"):
            table.add_column(column, overflow="fold")
        for name, values in histories.items():
            table.add_row(name, str(values[-1]), _summary(values))
        out.print(table)
    if not steps.empty:
        _show_checkpoints(out, steps)


def _show_checkpoints(out: Any, steps: Any) -> None:
    """Each checkpoint metric: its last value, its range and a chart of it by step."""
    from rich.table import Table

    from nbcellar.cli.render import sparkline

    first, last = steps["step"].iloc[0], steps["step"].iloc[-1]
    segments = steps["run"].nunique()
    resumed = f", in {segments} segments (resumed)" if segments > 1 else ""
    table = Table(title=f"checkpoints: {len(steps)}, steps {first} to {last}{resumed}",
                  title_justify="left")  # fmt: skip
    for column in ("metric", "last", "min", "max", "by step"):
        table.add_column(column, overflow="fold", no_wrap=column == "by step")
    for name in [c for c in steps.columns if c not in ("run", "step", "time")]:
        values = [v for v in steps[name].tolist() if isinstance(v, int | float)]
        if not values:
            continue
        table.add_row(name, f"{values[-1]:.6g}", f"{min(values):.6g}", f"{max(values):.6g}",
                      sparkline(values))  # fmt: skip
    out.print(table)
