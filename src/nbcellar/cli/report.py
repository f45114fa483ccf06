"""``nbcellar report``: runs compared in one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

import click

from nbcellar.cli.context import store_option


def write_report(runset: object, target: Path, keys: list[str] | None, title: str | None) -> None:
    """Write the report through a temporary file, so a reader never sees half of it."""
    import os

    from nbcellar.runs.report import report_html

    html = report_html(runset, keys, title)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.nbcellar-tmp")
    temporary.write_text(html, encoding="utf-8")
    os.replace(temporary, target)


@click.command()
@click.argument("run_ids", metavar="[RUN]...", nargs=-1)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="The HTML file to write.",
)
@click.option("--key", "keys", multiple=True, help="Only these logged values or outputs.")
@click.option("--title", help="Title of the report (default: how many runs it compares).")
@store_option
@click.pass_context
def report(
    ctx: click.Context,
    run_ids: tuple[str, ...],
    output: Path,
    keys: tuple[str, ...],
    title: str | None,
) -> None:
    """Write an HTML report comparing runs: the parameters that differ, every number logged
    (best highlighted), and each dict, table, image, figure and metric history side by side.

    One file with everything inline, to open in a browser or send. With no RUN, the runs of
    the latest grid."""
    from nbcellar.cli.compare import chosen_runs
    from nbcellar.cli.render import console
    from nbcellar.errors import NbcellarError
    from nbcellar.runs.runset import RecordedRun, RunSet

    chosen, root = chosen_runs(ctx, run_ids)
    runset = RunSet([RecordedRun(r, root, unpickle=False) for r in chosen], root)
    missing = [k for k in keys if k not in runset.names()]
    if missing:
        raise NbcellarError(f"no run here logged {', '.join(missing)} (see 'nbcellar show RUN')")
    write_report(runset, output, list(keys) or None, title)
    console().print(f"report on {len(chosen)} runs: {output}", soft_wrap=True, highlight=False)
