"""``nbcellar build [TASK...]``: build a pipeline, running only what changed (see
nbcellar.pipeline.build); ``--explain`` says what would run and why, running nothing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from nbcellar.cli.context import store_option, store_path

_MARK = {"ran": "ran", "up to date": "up to date", "failed": "FAILED", "skipped": "skipped",
         "cancelled": "cancelled", "would run": "would run", "may run": "may run"}  # fmt: skip


@click.command()
@click.argument("tasks", nargs=-1)
@click.option(
    "-C",
    "--pipeline",
    "where",
    type=click.Path(path_type=Path),
    default=None,
    help="The pipeline.yaml, or the folder of the pipeline (default: here).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Tasks run side by side (those whose upstream tasks are done).",
)
@click.option(
    "--executor",
    default=None,
    metavar="NAME",
    help="Where the tasks' runs execute (as for 'nbcellar run').",
)
@click.option("--force", is_flag=True, help="Run every task chosen, up to date or not.")
@click.option("--explain", is_flag=True, help="Say for each task whether it would run and "
              "why; run nothing.")  # fmt: skip
@click.option("--plot", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="Draw the tasks and what they need, coloured by state, in FILE (.html, or "
              ".svg); run nothing.")  # fmt: skip
@store_option
@click.pass_context
def build(
    ctx: click.Context,
    tasks: tuple[str, ...],
    where: Path | None,
    jobs: int,
    executor: str | None,
    force: bool,
    explain: bool,
    plot: Path | None,
) -> None:
    """Build the pipeline here: TASKS (default: all) and the tasks they need, each task's
    changed cells only; tasks that are up to date do not run."""
    from nbcellar.pipeline.build import TaskOutcome
    from nbcellar.pipeline.build import build as build_pipeline

    def said(outcome: TaskOutcome) -> None:
        if outcome.status in ("queued", "running"):
            if outcome.status == "running":
                click.echo(f"{outcome.task}: running ({outcome.why})", err=True)
            return
        click.echo(_line(outcome))

    if plot is not None and plot.suffix.lower() not in (".html", ".htm", ".svg"):
        raise click.BadParameter(f"{plot}: draws an .html page or an .svg file",
                                 param_hint="--plot")  # fmt: skip
    if plot is not None and not plot.absolute().parent.is_dir():
        raise click.BadParameter(f"{plot}: there is no folder {plot.absolute().parent}; make "
                                 "it first or give another file", param_hint="--plot")  # fmt: skip
    explain = explain or plot is not None
    done = build_pipeline(tasks, pipeline=where, jobs=jobs, executor=executor, force=force,
                          explain=explain, store=store_path(ctx), listener=said)  # fmt: skip
    click.echo(_summary(done, explain))
    if plot is not None:
        from nbcellar.pipeline.plot import write_plot

        write_plot(plot, done.pipeline, done.outcomes)
        click.echo(f"drawn in {plot}")
    if done.failed and not explain:
        sys.exit(1)


def _line(outcome: Any) -> str:
    text = f"{outcome.task}: {_MARK.get(outcome.status, outcome.status)}"
    if outcome.status == "ran":
        cells = outcome.cells
        text += (f" ({outcome.why}; {cells.get('ran', 0)} of {cells.get('total', 0)} cells "
                 f"ran, {cells.get('restored', 0)} restored, {outcome.seconds:.1f} s)")  # fmt: skip
    elif outcome.why:
        text += f" ({outcome.why})"
    return text


def _summary(done: Any, explain: bool) -> str:
    counts: dict[str, int] = {}
    for outcome in done.outcomes.values():
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    order = ("would run", "may run", "ran", "up to date", "failed", "skipped", "cancelled")
    parts = [f"{counts[s]} {s}" for s in order if counts.get(s)]
    return f"{len(done.outcomes)} tasks: " + ", ".join(parts)
