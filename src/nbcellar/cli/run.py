"""``nbcellar run``: execute a notebook or percent script in a real kernel."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from nbcellar.cli.context import context_store_root, store_option
from nbcellar.cli.render import cell_table, console, source_summary

MAX_RUNS = 10_000


def _seconds(value: float | None) -> float | None:
    import math

    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(
            f"{value:g} is not a number of seconds above 0 (leave it out for no limit)"
        )
    return value


def _named_kernel(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise click.BadParameter("an empty kernel name; 'jupyter kernelspec list' shows them")
    return value


@click.command()
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Where to write the executed notebook (default: NAME.out.ipynb beside the input); "
    "for several runs, a folder (default: NAME.runs/ beside the input).",
)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a parameter (a Python or YAML value); a list, or commas (-p n=10,100), gives a "
    "run per value. Repeatable.",
)
@click.option(
    "--grid",
    "grid_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML file: a mapping of parameter names to lists (every combination), or a list of "
    "such mappings.",
)
@click.option("--strict", is_flag=True, help="Fail on parameters the notebook does not declare.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Runs side by side, each in its own kernel (default: the number of CPU cores).",
)
@click.option(
    "--kernel",
    "kernel_name",
    callback=lambda _c, _p, v: _named_kernel(v),
    help="Kernel to use (default: the notebook's own).",
)
@click.option(
    "--timeout",
    type=float,
    callback=lambda _c, _p, v: _seconds(v),
    help="Seconds a single cell may run before it is stopped (whole seconds: rounded up).",
)
@click.option(
    "--max-runs",
    type=click.IntRange(min=1),
    default=MAX_RUNS,
    show_default=True,
    help="Refuse a grid of more runs than this.",
)
@click.option("--allow-errors", is_flag=True, help="Keep going after a cell raises, and exit 0.")
@click.option(
    "--cwd",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Working directory of the kernel (default: the notebook's folder, as in Jupyter).",
)
@click.option(
    "--executor",
    default="local",
    show_default=True,
    help="Where the runs execute: 'local' (kernels on this machine, -j at a time), 'dask' (a "
    "Dask LocalCluster of -j workers), dask://HOST:PORT (a running Dask scheduler: the runs "
    "go on if this command stops; 'nbcellar jobs' follows them), 'ipyparallel' (a Cluster of "
    "-j engines) or ipyparallel://PROFILE (a running ipcluster).",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="On a cluster: how many lost workers a run survives (it starts again on another "
    "worker, its completed cells restored from the cache).",
)
@click.option(
    "--resume",
    metavar="RUN",
    help="Go on with a run that stopped (its kernel or machine lost): the same parameters, "
    "its cells restored from the cache, its loops from their last nbcellar.checkpoint.",
)
@click.option("--no-cache", is_flag=True, help="Run every cell; neither use nor fill the cache.")
@store_option
@click.pass_context
def run(
    ctx: click.Context,
    notebook: Path,
    output: Path | None,
    params: tuple[str, ...],
    grid_file: Path | None,
    strict: bool,
    jobs: int | None,
    kernel_name: str | None,
    timeout: float | None,
    max_runs: int,
    allow_errors: bool,
    cwd: Path | None,
    executor: str,
    retries: int,
    resume: str | None,
    no_cache: bool,
) -> None:
    """Run NOTEBOOK (.ipynb or percent-format .py) top to bottom and save the executed copy.

    Cells whose code and inputs did not change since they last ran are restored from the
    cache instead of run; the table at the end says which, and the time saved. Parameters
    (-p, --grid) go into a cell tagged injected-parameters after the cell tagged parameters,
    as with papermill."""
    from nbcellar.runs import params as parameters
    from nbcellar.runs.launch import RunOptions, executor_for, launch, plan_runs, prepared

    # Bad values stop here, before anything runs or the store is touched.
    chosen = executor_for(executor)
    resumed = None
    if resume is not None:
        from nbcellar.runs.api import resumed_params

        if params or grid_file is not None or no_cache:
            raise click.UsageError("--resume goes on with the run's own parameters and the "
                                   "cache: no -p, --grid or --no-cache with it")  # fmt: skip
        own, resumed = resumed_params(notebook, resume, context_store_root(ctx, notebook))
        sets = parameters.expand((), None, max_runs=max_runs, params=own)
    else:
        sets = parameters.expand(params, grid_file, max_runs=max_runs)
    options = RunOptions(
        kernel_name=kernel_name, timeout=timeout, allow_errors=allow_errors, cwd=cwd,
        jobs=jobs or os.cpu_count() or 1, retries=retries, resume_from=resumed,
    )  # fmt: skip
    plan = plan_runs(notebook, sets, options, output=output, strict=strict)
    progress = Progress(plan)
    with prepared(chosen, plan, options):  # (a scheduler not reached: nothing written)
        if not no_cache:
            from dataclasses import replace

            from nbcellar.runs.launch import foresee
            from nbcellar.store import open_store

            store = open_store(context_store_root(ctx, notebook))
            options = replace(options, store_root=store.root)
            store.close()
            plan = foresee(plan, store.root)
    with progress.bars:  # (launch releases the executor too if it fails)
        outcomes = launch(plan, options, chosen, progress.hear).wait()
    if len(plan.runs) == 1:
        _say_run(notebook, outcomes[0], allow_errors, options.store_root)
    else:
        jobs_used = min(options.jobs, len(plan.runs))
        _say_grid(notebook, plan, outcomes, jobs_used, allow_errors, options.store_root)


class Progress:
    """Progress bars drawn from a launch's events: per cell for one run; for a grid, runs
    done / running / failed and a bar per running run."""

    def __init__(self, plan: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as Bars

        self.plan = plan
        self.bars = Bars(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[cell]}"),
            console=console(stderr=True), transient=True,
        )  # fmt: skip
        self.single = len(plan.runs) == 1
        self.tasks: dict[int, Any] = {}
        self.counts = {"running": 0, "done": 0, "failed": 0}
        if self.single:
            cells = len(plan.runs[0].notebook.code_cells)
            self.tasks[1] = self.bars.add_task(plan.source.name, total=cells,
                                               cell="starting kernel")  # fmt: skip
        else:
            self.overall = self.bars.add_task(f"{len(plan.runs)} runs", total=len(plan.runs),
                                              cell="")  # fmt: skip
            self._show_counts()

    def _show_counts(self) -> None:
        c = self.counts
        text = f"{c['done']} done, {c['running']} running, {c['failed']} failed"
        self.bars.update(self.overall, cell=text)

    def hear(self, event: Any) -> None:
        from nbcellar.runs.launch import CellDone, CellStarted, RunEnded, RunStarted
        from nbcellar.runs.params import label

        run = self.plan.runs[event.number - 1]
        if isinstance(event, CellStarted) and self.single:
            source = run.notebook.code_cells[event.index].source
            shown = f"[{event.index + 1}] {source_summary(source, 40)}"
            self.bars.update(self.tasks[1], cell=shown)
        elif isinstance(event, CellDone) and event.number in self.tasks:
            self.bars.advance(self.tasks[event.number])
        elif isinstance(event, RunStarted) and event.attempt > 1:
            task = self.tasks.get(event.number)
            if task is not None and not self.single:  # its worker was lost: it starts again
                self.bars.reset(task, description=self.bars.tasks[task].description + " (retry)")
            elif self.single:
                self.bars.update(self.tasks[1], cell="worker lost: starting again")
        elif isinstance(event, RunStarted) and not self.single:
            varied = {k: run.params[k] for k in self.plan.varied if k in run.params}
            shown = label(varied) or label(run.params)
            self.tasks[event.number] = self.bars.add_task(
                f"  run {event.number} {shown}", total=len(run.notebook.code_cells), cell=""
            )
            self.counts["running"] += 1
            self._show_counts()
        elif isinstance(event, RunEnded) and not self.single:
            task = self.tasks.pop(event.number, None)
            if task is not None:  # (a run that never started has none)
                self.bars.remove_task(task)
                self.counts["running"] -= 1
            self.counts["failed" if event.status == "failed" else "done"] += 1
            self._show_counts()
            self.bars.advance(self.overall)


def _say_run(notebook: Path, outcome: Any, allow_errors: bool, store_root: Any) -> None:
    result, target, record = outcome.result, outcome.run.output, outcome.record
    code_cells = outcome.run.notebook.code_cells
    out = console()
    out.print(cell_table(code_cells, result.cells))
    for cell in result.cells:
        if cell.status == "ran" and cell.reason:
            out.print(f"[{cell.index + 1}] always runs: {cell.reason}", soft_wrap=True)
    ran = sum(c.status == "ran" for c in result.cells)
    restored = sum(c.status == "restored" for c in result.cells)
    errors = [c for c in result.cells if c.status == "error"]
    cache_note = ""
    if result.cached:
        cache_note = f", {restored} restored (saved {result.saved_seconds:.1f} s)"
    where = f"on kernel {result.kernel_name}"
    if not result.kernel_started:
        where = "without starting a kernel (nothing changed since the last run)"
    recorded = f" (run {record.id})" if record is not None else ""
    out.print(
        f"{ran} of {len(code_cells)} cells ran{cache_note} in {result.seconds:.1f} s "
        f"{where}; executed notebook: {target}{recorded}",
        soft_wrap=True,
    )
    warn_store_failures(result.store_failures, store_root)
    if errors and not allow_errors:
        click.echo(f"nbcellar: error: {failure_line(errors[0], notebook, target)}", err=True)
        sys.exit(1)


def failure_line(cell: Any, notebook: Path, target: Path) -> str:
    """Why a run stopped at ``cell``, as a user reads it."""
    from nbcellar.runs.launch import LOST

    where = f"cell [{cell.index + 1}] of {notebook}"
    if str(cell.error).startswith(LOST):
        return f"the run ended at {where}: {cell.error.removeprefix(LOST)}"
    if cell.error == "kernel died":
        return (f"the kernel died while {where} ran (killed, or out of memory); what ran before "
                f"it is in {target}")  # fmt: skip
    if str(cell.error).startswith("timed out"):
        return f"{where} {cell.error} (--timeout) and was stopped; see {target}"
    return f"{where} raised {cell.error}; see {target} for the traceback"


def warn_store_failures(failures: Sequence[str], store_root: Any) -> None:
    """One line when the cache could not store what cells made (the run itself is fine)."""
    if not failures:
        return
    reasons = sorted({f.partition(": ")[2] for f in failures})
    click.echo(
        f"nbcellar: warning: the cache could not store what {len(failures)} cell"
        f"{'s' * (len(failures) != 1)} made ({'; '.join(reasons)[:300]}); "
        f"{'it runs' if len(failures) == 1 else 'they run'} again next time; free space in "
        f"{store_root} or see 'nbcellar store info'",
        err=True,
    )


def shared_cells_summary(nb: Any, results: list[Any]) -> list[str]:
    """One line per cell: how often it ran, how often it was restored
    (``cell [4] features = embed(...)  ran 3 times, restored in 45 runs``)."""
    lines = []
    for number, cell in enumerate(nb.code_cells):
        statuses = [r.cells[number].status for r in results if number < len(r.cells)]
        restored = statuses.count("restored")
        ran = statuses.count("ran") + statuses.count("error")
        said = f"ran {ran} time{'s' * (ran != 1)}"
        if restored:
            said += f", restored in {restored} run{'s' * (restored != 1)}"
        elif ran == len(statuses) and ran > 1:
            said += " (in every run)"
        elif not ran:
            said = "not run"
        lines.append(f"cell [{number + 1}] {source_summary(cell.source, 40)}  {said}")
    return lines


def _say_grid(
    notebook: Path,
    plan: Any,
    outcomes: list[Any],
    jobs: int,
    allow_errors: bool,
    store_root: Any,
) -> None:
    """One row per run, then how much the cache shared."""
    from rich.table import Table

    runs = [(o.run.params, o.run.notebook) for o in outcomes]
    results = [(o.result, o.run.output) for o in outcomes]
    records = [o.record for o in outcomes if o.record is not None]
    varied = list(plan.varied)
    first = plan.runs[0].notebook
    folder = plan.folder
    table = Table(title=f"{len(runs)} runs of {notebook}", title_justify="left")
    columns = ("run", *varied, "status", "ran", "restored", "seconds", "notebook")
    for column in (*columns, *(("record",) if records else ())):
        justify = "right" if column in ("ran", "restored", "seconds") else "left"
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    failed: list[tuple[int, str]] = []
    total_ran = total_restored = total_cells = 0
    for number, ((params, _), (result, target)) in enumerate(zip(runs, results, strict=True), 1):
        ran = sum(c.status == "ran" for c in result.cells)
        restored = sum(c.status == "restored" for c in result.cells)
        total_ran += ran
        total_restored += restored
        total_cells += len(result.cells)
        error = result.failed
        status = "ok" if error is None else f"failed: cell [{error.index + 1}] {error.error}"
        if error is not None:
            failed.append((number, status))
        table.add_row(
            str(number),
            *(repr(params[name]) if name in params else "" for name in varied),
            status,
            str(ran),
            str(restored),
            f"{result.seconds:.1f}",
            str(target),
            *((outcomes[number - 1].record.id,) if records else ()),
        )
    out = console()
    out.print(table)
    for line in shared_cells_summary(first, [result for result, _ in results]):
        out.print(line, soft_wrap=True, highlight=False)
    out.print(
        f"{len(runs) - len(failed)} of {len(runs)} runs ok ({jobs} at a time); {total_ran} of "
        f"{total_cells} cells executed, {total_restored} restored from the cache (cells that do "
        f"not depend on a varied parameter run once); notebooks in {folder}",
        soft_wrap=True,
    )
    failures = [f for result, _ in results for f in result.store_failures]
    warn_store_failures(failures, store_root)
    if failed and not allow_errors:
        number, status = failed[0]
        click.echo(f"nbcellar: error: run {number} of {notebook} {status}", err=True)
        sys.exit(1)
