"""``nbcellar checkpoints RUN``: a run's checkpoints (step, time, metrics), and with
``--analyze MODULE:FUNCTION`` that function over them (see nbcellar.runs.analyses)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from nbcellar.cli.context import context_store_root, store_option
from nbcellar.errors import NbcellarError


def _function(target: str) -> Any:
    """``module:function`` imported as the project's code is (from the working directory)."""
    import importlib
    import os

    module, _, name = target.partition(":")
    if not module or not name:
        raise NbcellarError(f"--analyze {target!r}: expected MODULE:FUNCTION (e.g. "
                            "evaluation:validate)")  # fmt: skip
    sys.path.insert(0, os.getcwd())
    try:
        found = importlib.import_module(module)
    except ImportError as exc:
        raise NbcellarError(f"--analyze {target}: cannot import {module} ({exc})") from None
    function = getattr(found, name, None)
    if not callable(function):
        raise NbcellarError(f"--analyze {target}: {module} has no function {name}")
    return function


@click.command()
@click.argument("run")
@click.option("--analyze", "target", metavar="MODULE:FUNCTION",
              help="Call this function with each checkpoint's variables it names; a table of "
              "its answers by step (kept: only new checkpoints are computed again).")  # fmt: skip
@click.option("--executor", default=None, help="Where to analyse: local (default), dask, "
              "dask://HOST:PORT.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="JSON rows instead of a table.")
@store_option
@click.pass_context
def checkpoints(
    ctx: click.Context, run: str, target: str | None, executor: str | None, as_json: bool
) -> None:
    """The checkpoints of RUN (nbcellar.checkpoint), or an analysis over them."""
    from nbcellar.runs.runset import RecordedRun
    from nbcellar.runs.runset import runs as recorded

    root = context_store_root(ctx)
    records = [r for r in recorded(store=root).records if r.id == run or r.id.startswith(run)]
    if len(records) != 1:
        some = "several runs" if records else "no run"
        raise NbcellarError(f"{some} {run!r} in {root} (see 'nbcellar runs')")
    found = RecordedRun(records[0], root)
    if target is not None:
        frame = found.analyze(_function(target), executor=executor).reset_index()
    else:
        frame = found.checkpoints
        if frame.empty:
            raise NbcellarError(f"run {found.id} took no checkpoint (nbcellar.checkpoint)")
        frame = frame.drop(columns=["time"])
    if as_json:
        click.echo(json.dumps(frame.to_dict("records"), indent=2, default=repr))
        return
    from rich.table import Table

    from nbcellar.cli.render import console

    title = f"run {found.id}: " + (f"{target} by checkpoint" if target else "checkpoints")
    table = Table(title=title, title_justify="left")
    for column in frame.columns:
        table.add_column(str(column), justify="right" if column != "run" else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row))
    console().print(table)
