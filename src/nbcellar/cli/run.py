"""``nbcellar run``: execute a notebook or percent script in a real kernel."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from nbcellar.cli.context import context_store_root, store_option
from nbcellar.cli.render import cell_table, console, source_summary


def default_output(path: Path) -> Path:
    """``analysis.ipynb`` -> ``analysis.out.ipynb``; scripts get an ``.ipynb`` beside them too."""
    return path.with_name(path.stem + ".out.ipynb")


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
    no_cache: bool,
) -> None:
    """Run NOTEBOOK (.ipynb or percent-format .py) top to bottom and save the executed copy.

    Cells whose code and inputs did not change since they last ran are restored from the
    cache instead of run; the table at the end says which, and the time saved. Parameters
    (-p, --grid) go into a cell tagged injected-parameters after the cell tagged parameters,
    as with papermill."""
    from nbcellar.notebook import read_notebook
    from nbcellar.runs import params as parameters
    from nbcellar.runs.execute import check_kernel

    nb = read_notebook(notebook)
    # Bad values stop here, before anything runs.
    runs = parameters.expand(params, grid_file, max_runs=max_runs)
    names = list(dict.fromkeys(n for run in runs for n in run))
    err = console(stderr=True)
    if names and parameters.parameters_cell(nb) is None:
        message = f"{notebook} has no cell tagged 'parameters'; the values go in a cell at the top"
        if strict:
            raise parameters.ParameterError(message + " (--strict)")
        err.print(f"nbcellar: warning: {message}", soft_wrap=True)
    else:
        strangers = parameters.unknown(nb, dict.fromkeys(names))
        if strangers:
            declared = ", ".join(parameters.declared(nb)) or "none"
            message = (
                f"{notebook}: parameter{'s' * (len(strangers) > 1)} {', '.join(strangers)} not "
                f"assigned in the 'parameters' cell (it assigns: {declared})"
            )
            if strict:
                raise parameters.ParameterError(message + " (--strict)")
            err.print(f"nbcellar: warning: {message}", soft_wrap=True)
    injected = [(run, parameters.inject(nb, run)) for run in runs]  # unwritable values stop here
    check_kernel(kernel_name or nb.kernel_name or "python3")  # before the store is touched
    store_root = None
    if not no_cache:
        from nbcellar.store import open_store

        store = open_store(context_store_root(ctx, notebook))
        store_root = store.root
        store.close()
    options = {
        "cwd": cwd or notebook.resolve().parent,
        "kernel_name": kernel_name,
        "timeout": timeout,
        "allow_errors": allow_errors,
        "store_root": store_root,
    }
    if len(injected) == 1:
        target = output or default_output(notebook)
        if target.resolve() == notebook.resolve():
            raise click.BadParameter("the output would overwrite the input", param_hint="--output")
        _run_one(notebook, injected[0], target, options, allow_errors)
        return
    folder = output or notebook.with_name(notebook.stem + ".runs")
    if folder.exists() and not folder.is_dir():
        raise click.BadParameter(
            f"{folder} is a file; several runs need a folder", param_hint="--output"
        )
    _run_grid(notebook, injected, folder, options, allow_errors, jobs or os.cpu_count() or 1)


def _progress(err: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[cell]}"),
        console=err,
        transient=True,
    )


def _execute(nb: Any, description: str, options: dict[str, Any], run_id: str | None) -> Any:
    """One run with a progress bar over its cells."""
    from nbcellar.runs.execute import CellRun, execute_notebook

    code_cells = nb.code_cells
    progress = _progress(console(stderr=True))

    def started(index: int) -> None:
        progress.update(task, cell=f"[{index + 1}] {source_summary(code_cells[index].source, 40)}")

    def done(run: CellRun) -> None:
        progress.advance(task)

    with progress:
        task = progress.add_task(description, total=len(code_cells), cell="starting kernel")
        return execute_notebook(
            nb, on_cell_start=started, on_cell_done=done, run_id=run_id, **options
        )


def _kernel_name(options: dict[str, Any], nb: Any) -> str:
    return str(options["kernel_name"] or nb.kernel_name or "python3")


@contextmanager
def _run_book(store_root: Path | None) -> Iterator[Any]:
    """The store's run records (None when the run uses no store: --no-cache)."""
    if store_root is None:
        yield None
        return
    from nbcellar.runs.records import RunBook
    from nbcellar.store import open_store

    store = open_store(store_root)
    try:
        yield RunBook(store)
    finally:
        store.close()


def _run_one(
    notebook: Path,
    run: tuple[dict[str, Any], Any],
    target: Path,
    options: dict[str, Any],
    allow_errors: bool,
) -> None:
    from nbcellar.notebook import write_notebook

    params, nb = run
    with _run_book(options["store_root"]) as book:
        record = None
        if book is not None:
            record = book.start(book.create(notebook, params, None, _kernel_name(options, nb)))
        try:
            result = _execute(nb, notebook.name, options, None if record is None else record.id)
        except BaseException:
            if book is not None and record is not None:
                book.cancel([record])
            raise
        write_notebook(result.notebook, target)
        if book is not None and record is not None:
            record = book.finish(record, result, target)
    code_cells = nb.code_cells
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
    warn_store_failures(result.store_failures, options.get("store_root"))
    if errors and not allow_errors:
        click.echo(f"nbcellar: error: {failure_line(errors[0], notebook, target)}", err=True)
        sys.exit(1)


def failure_line(cell: Any, notebook: Path, target: Path) -> str:
    """Why a run stopped at ``cell``, as a user reads it."""
    where = f"cell [{cell.index + 1}] of {notebook}"
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


def run_file_name(number: int, params: dict[str, Any]) -> str:
    """``003-model=rf,n=10.ipynb``: sortable, readable, safe on every file system."""
    text = ",".join(f"{k}={v}" for k, v in params.items())
    safe = "".join(ch if ch.isalnum() or ch in "=,._-" else "_" for ch in text)[:80]
    return f"{number:03d}-{safe}.ipynb" if safe else f"{number:03d}.ipynb"


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


def _run_grid(
    notebook: Path,
    runs: list[tuple[dict[str, Any], Any]],
    folder: Path,
    options: dict[str, Any],
    allow_errors: bool,
    jobs: int,
) -> None:
    """Run every parameter set, ``jobs`` at a time in kernels started ahead; one row per run,
    then how much the cache shared."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from rich.table import Table

    from nbcellar.notebook import write_notebook
    from nbcellar.runs.execute import ExecutionResult, kernel_env, served_without_kernel
    from nbcellar.runs.params import label
    from nbcellar.runs.pool import KernelPool, close_thread_loop
    from nbcellar.runs.sharing import interleave, signatures

    folder.mkdir(parents=True, exist_ok=True)
    varied = [
        name
        for name in dict.fromkeys(n for params, _ in runs for n in params)
        if len({repr(params.get(name)) for params, _ in runs}) > 1
    ]
    shared = signatures(runs, varied)
    first = runs[0][1]
    kernel_name = options["kernel_name"] or first.kernel_name or "python3"
    jobs = min(jobs, len(runs))
    cwd = Path(options["cwd"])
    served = [False] * len(runs)
    if options["store_root"] is not None:
        served = [
            served_without_kernel(nb, kernel_name, options["store_root"], cwd) for _, nb in runs
        ]
    need_kernel = served.count(False)
    pool = KernelPool(  # kernels only for the runs the store cannot serve without one
        kernel_name, cwd, kernel_env(options["store_root"]), min(jobs, need_kernel), need_kernel,
        setup="%load_ext nbcellar" if options["store_root"] is not None else "",
    )  # fmt: skip
    progress = _progress(console(stderr=True))
    overall = progress.add_task(f"{len(runs)} runs", total=len(runs), cell="")
    counts = {"running": 0, "done": 0, "failed": 0}
    lock = threading.Lock()

    def show_counts() -> None:
        text = f"{counts['done']} done, {counts['running']} running, {counts['failed']} failed"
        progress.update(overall, cell=text)

    def one(number: int, params: dict[str, Any], nb: Any) -> tuple[ExecutionResult, Path]:
        with _run_book(store_root) as book:  # a connection of this thread's own
            record = records[number - 1] if records else None
            if book is not None and record is not None:
                record = book.start(record)
            result, target = execute_one(number, params, nb, None if record is None else record.id)
            if book is not None and record is not None:
                if stopping.is_set():  # its kernel was stopped under it: not a failure
                    book.cancel([record])
                else:
                    book.finish(record, result, target)
            return result, target

    def execute_one(
        number: int, params: dict[str, Any], nb: Any, run_id: str | None
    ) -> tuple[ExecutionResult, Path]:
        from nbcellar.runs.execute import CellRun, execute_notebook

        shown = label({k: params[k] for k in varied if k in params}) or label(params)
        task = progress.add_task(f"  run {number} {shown}", total=len(nb.code_cells), cell="")
        with lock:
            counts["running"] += 1
            show_counts()

        def done(run: CellRun) -> None:
            progress.advance(task)

        try:
            result = execute_notebook(
                nb, on_cell_done=done, kernel=pool.take, run_id=run_id, **options
            )
        finally:
            progress.remove_task(task)
            close_thread_loop()
        if not result.kernel_started and not served[number - 1]:
            pool.give_back_unused()  # foreseen to need a kernel, but served from the store
        target = folder / run_file_name(number, params)
        write_notebook(result.notebook, target)
        with lock:
            counts["running"] -= 1
            counts["failed" if result.failed is not None else "done"] += 1
            show_counts()
        progress.advance(overall)
        return result, target

    store_root = options["store_root"]
    records: list[Any] = []
    with _run_book(store_root) as book:
        if book is not None:
            from nbcellar.runs.records import new_run_id

            grid = "grid-" + new_run_id()
            records = [book.create(notebook, params, grid, kernel_name) for params, _ in runs]
    results: list[tuple[ExecutionResult, Path]] = []
    executor = ThreadPoolExecutor(max_workers=jobs)
    stopping = threading.Event()
    try:
        with progress:
            show_counts()
            futures = {
                position: executor.submit(one, position + 1, *runs[position])
                for position in interleave(shared)
            }
            results = [futures[position].result() for position in range(len(runs))]
    except BaseException:  # Ctrl-C, or a run that could not start: stop the others now
        stopping.set()
        executor.shutdown(wait=False, cancel_futures=True)
        pool.close()  # their kernels stop, so the runs in progress end at once
        executor.shutdown(wait=True)
        with _run_book(store_root) as book:
            if book is not None:
                book.cancel(records)
        raise
    finally:
        executor.shutdown(wait=True)
        pool.close()

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
            *((records[number - 1].id,) if records else ()),
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
    warn_store_failures(failures, options.get("store_root"))
    if failed and not allow_errors:
        number, status = failed[0]
        click.echo(f"nbcellar: error: run {number} of {notebook} {status}", err=True)
        sys.exit(1)
