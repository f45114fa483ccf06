"""``nbcellar jobs``: launches and their runs, from the store (so from any process, after the
client that launched them is gone); ``jobs show``, ``jobs wait``, ``jobs cancel`` one."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from nbcellar.cli.context import context_store_root, store_option

_ORDER = ("queued", "running", "ok", "failed", "cancelled", "died", "retried")


def _counts(job: Any) -> str:
    counts = job.counts()
    return ", ".join(f"{counts[s]} {s}" for s in _ORDER if counts.get(s))


def _elapsed(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}" if minutes else f"{seconds:.1f} s"


@click.group(invoke_without_command=True)
@click.option("--last", type=click.IntRange(min=1), help="Only the N most recent launches.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list instead of a table.")
@store_option
@click.pass_context
def jobs(ctx: click.Context, last: int | None, as_json: bool) -> None:
    """Launches of 'nbcellar run' (on every executor) and how their runs are doing."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from nbcellar.cli.render import console
    from nbcellar.runs.jobs import jobs as all_jobs

    root = context_store_root(ctx)
    found = all_jobs(root)
    if last is not None:
        found = found[:last]
    if as_json:
        click.echo(json.dumps([{**asdict(j.launch), "counts": j.counts()} for j in found],
                              indent=2, default=repr))  # fmt: skip
        return
    table = Table(title=f"{len(found)} launches in {root}", title_justify="left")
    for column in ("launch", "notebook", "executor", "runs", "started", "elapsed"):
        table.add_column(column, overflow="fold", no_wrap=column in ("launch", "started"))
    for job in found:
        table.add_row(
            job.id, Path(job.launch.notebook).name, job.launch.executor, _counts(job),
            time.strftime("%m-%d %H:%M", time.localtime(job.launch.created)),
            _elapsed(job.elapsed),
        )  # fmt: skip
    console().print(table)


def _runs_table(job: Any) -> Any:
    from rich.table import Table

    from nbcellar.cli.runs import _STYLE
    from nbcellar.runs.params import label

    table = Table(title=f"launch {job.id} ({job.launch.executor}): {_counts(job)}",
                  title_justify="left")  # fmt: skip
    for column in ("run", "params", "status", "worker", "cell", "elapsed"):
        table.add_column(column, overflow="fold", no_wrap=column == "run")
    for record in job.runs:
        style = _STYLE.get(record.status, "")
        status = f"[{style}]{record.status}[/]"
        if record.retried:
            status += f" (retried: {record.attempts} attempts)"
        if record.error:
            status += f": {record.error}"
        elapsed = ""
        if record.started is not None:
            elapsed = _elapsed((record.ended or time.time()) - record.started)
        cell = "" if record.cell is None or record.status != "running" else f"[{record.cell + 1}]"
        table.add_row(record.id, label(record.params), status,
                      (record.worker or "").removeprefix("tcp://"), cell, elapsed)  # fmt: skip
    return table


@jobs.command()
@click.argument("launch")
@store_option
@click.pass_context
def show(ctx: click.Context, launch: str) -> None:
    """The runs of LAUNCH (an id 'nbcellar jobs' lists, or its start)."""
    from nbcellar.cli.render import console
    from nbcellar.runs.jobs import job

    console().print(_runs_table(job(launch, context_store_root(ctx))))


@jobs.command()
@click.argument("launch")
@click.option("--timeout", type=float, help="Give up after this many seconds (exit 1).")
@store_option
@click.pass_context
def wait(ctx: click.Context, launch: str, timeout: float | None) -> None:
    """Wait until every run of LAUNCH ended, then show them; exit 1 if one failed."""
    from nbcellar.cli.render import console
    from nbcellar.runs import jobs as launches

    err = console(stderr=True)

    def heard(job: Any) -> None:
        err.print(f"launch {job.id}: {_counts(job)}", soft_wrap=True)

    ended = launches.wait(launch, context_store_root(ctx), heard=heard, timeout=timeout)
    console().print(_runs_table(ended))
    if any(r.status != "ok" for r in ended.runs):
        sys.exit(1)


@jobs.command()
@click.argument("launch")
@store_option
@click.pass_context
def cancel(ctx: click.Context, launch: str) -> None:
    """Stop the runs of LAUNCH not ended (queued ones never start; running ones stop)."""
    from nbcellar.runs import jobs as launches

    root = context_store_root(ctx)
    if launches.job(launch, root).ended:
        click.echo(f"launch {launches.job(launch, root).id}: nothing to cancel (every run ended)")
        return
    found = launches.cancel(launch, root)
    left = sum(r.status in ("queued", "running") for r in found.runs)
    said = f"launch {found.id}: cancelled"
    if left:
        said += f" ({left} run{'s' * (left > 1)} stopping on {found.launch.executor})"
    click.echo(said)
