"""``nbcellar test [PATHS...]``: smoke-test the notebooks and pipelines found (see
nbcellar.smoke): a line per test as it ends, then each failure's cell and traceback."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from nbcellar.cli.context import store_option, store_path


@click.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Tests run side by side.")  # fmt: skip
@click.option("--changed", is_flag=True, help="Run only what changed since its last green "
              "run (the others: unchanged).")  # fmt: skip
@store_option
@click.pass_context
def smoke(ctx: click.Context, paths: tuple[Path, ...], jobs: int, changed: bool) -> None:
    """Smoke-test PATHS (default: here): each notebook and percent script with its
    smoke-parameters cell's values, each pipeline with its smoke: values."""
    from nbcellar.smoke import SmokeResult, smoke_test

    start = time.perf_counter()

    def said(result: SmokeResult) -> None:
        click.echo(_line(result))

    results = smoke_test(paths, jobs=jobs, changed=changed, store=store_path(ctx),
                         listener=said)  # fmt: skip
    failed = [r for r in results if r.status == "failed"]
    for result in failed:
        if result.details:
            click.echo(f"\n___ {result.name} ___\n{result.details}")
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    order = ("passed", "failed", "skipped", "unchanged")
    summary = ", ".join(f"{counts[s]} {s}" for s in order if counts.get(s)) or "no tests found"
    click.echo(f"{summary} in {time.perf_counter() - start:.1f} s")
    if failed or not results:
        sys.exit(1)


def _line(result: Any) -> str:
    text = f"{result.status.upper():9} {result.name}"
    cells = result.cells
    if result.status == "passed" and cells:
        text += (f" ({cells.get('ran', 0)} of {cells.get('total', 0)} cells ran, "
                 f"{cells.get('restored', 0)} restored, {result.seconds:.1f} s)")  # fmt: skip
    elif result.failure:
        text += f": {result.failure}"
    return text
