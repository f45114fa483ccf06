"""``nbcellar run``: execute a notebook or percent script in a real kernel."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nbcellar.cli.context import store_option, store_path
from nbcellar.cli.render import cell_table, console, source_summary


def default_output(path: Path) -> Path:
    """``analysis.ipynb`` -> ``analysis.out.ipynb``; scripts get an ``.ipynb`` beside them too."""
    return path.with_name(path.stem + ".out.ipynb")


@click.command()
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Where to write the executed notebook (default: NAME.out.ipynb beside the input).",
)
@click.option("--kernel", "kernel_name", help="Kernel to use (default: the notebook's own).")
@click.option("--timeout", type=float, help="Seconds a single cell may run before it is stopped.")
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
    kernel_name: str | None,
    timeout: float | None,
    allow_errors: bool,
    cwd: Path | None,
    no_cache: bool,
) -> None:
    """Run NOTEBOOK (.ipynb or percent-format .py) top to bottom and save the executed copy.

    Cells whose code and inputs did not change since they last ran are restored from the
    cache instead of run; the table at the end says which, and the time saved."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from nbcellar.notebook import read_notebook, write_notebook
    from nbcellar.runs.execute import CellRun, check_kernel, execute_notebook

    nb = read_notebook(notebook)
    target = output or default_output(notebook)
    if target.resolve() == notebook.resolve():
        raise click.BadParameter("the output would overwrite the input", param_hint="--output")
    check_kernel(kernel_name or nb.kernel_name or "python3")  # before the store is touched
    store_root = None
    if not no_cache:
        from nbcellar.store import open_store

        store = open_store(store_path(ctx))
        store_root = store.root
        store.close()
    code_cells = nb.code_cells
    err = console(stderr=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[cell]}"),
        console=err,
        transient=True,
    )

    def started(index: int) -> None:
        progress.update(task, cell=f"[{index + 1}] {source_summary(code_cells[index].source, 40)}")

    def done(run: CellRun) -> None:
        progress.advance(task)

    with progress:
        task = progress.add_task(notebook.name, total=len(code_cells), cell="starting kernel")
        result = execute_notebook(
            nb,
            cwd=cwd or notebook.resolve().parent,
            kernel_name=kernel_name,
            timeout=timeout,
            allow_errors=allow_errors,
            store_root=store_root,
            on_cell_start=started,
            on_cell_done=done,
        )
    write_notebook(result.notebook, target)

    out = console()
    out.print(cell_table(code_cells, result.cells))
    ran = sum(c.status == "ran" for c in result.cells)
    restored = sum(c.status == "restored" for c in result.cells)
    errors = [c for c in result.cells if c.status == "error"]
    cache_note = ""
    if result.cached:
        cache_note = f", {restored} restored (saved {result.saved_seconds:.1f} s)"
    where = f"on kernel {result.kernel_name}"
    if not result.kernel_started:
        where = "without starting a kernel (nothing changed since the last run)"
    out.print(
        f"{ran} of {len(code_cells)} cells ran{cache_note} in {result.seconds:.1f} s "
        f"{where}; executed notebook: {target}",
        soft_wrap=True,
    )
    if errors and not allow_errors:
        first = errors[0]
        click.echo(
            f"nbcellar: error: cell [{first.index + 1}] of {notebook} raised {first.error}; "
            f"see {target} for the traceback",
            err=True,
        )
        sys.exit(1)
