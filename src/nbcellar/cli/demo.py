"""``nbcellar demo``: the bundled example project, copied, run as a grid, compared, reported."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click

from nbcellar.cli.context import store_option, store_path
from nbcellar.errors import NbcellarError

NEEDED = {"sklearn": "scikit-learn", "matplotlib": "matplotlib", "pandas": "pandas"}


def copy_project(folder: Path) -> list[str]:
    """Copy the bundled project into ``folder``; files already there are kept as they are
    (edit the notebook, run the demo again: only what the edit touches runs)."""
    from nbcellar.demo import project_folder

    source = project_folder()
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in sorted(source.iterdir()):
        if path.is_file() and not path.name.startswith((".", "__")):
            target = folder / path.name
            if not target.exists():
                shutil.copyfile(path, target)
                copied.append(path.name)
    return copied


@click.command()
@click.argument(
    "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("nbcellar-demo")
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Runs side by side (default: the number of CPU cores).",
)
@store_option
@click.pass_context
def demo(ctx: click.Context, folder: Path, jobs: int | None) -> None:
    """Run the example project: handwritten digits (scikit-learn's bundled load_digits) with
    one slow preprocessing cell and a grid of 12 models and settings.

    Copies the project into FOLDER (default: ./nbcellar-demo), runs its grid in parallel with
    the cell cache in FOLDER/.nbcellar, prints the comparison and writes FOLDER/report.html.
    Run it again: everything comes from the cache in seconds."""
    import importlib.util

    from nbcellar.cli.compare import compare
    from nbcellar.cli.render import console
    from nbcellar.cli.report import report
    from nbcellar.cli.run import run

    missing = [pkg for module, pkg in NEEDED.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise NbcellarError(
            f"the demo needs {', '.join(missing)}: pip install 'nbcellar[examples]'"
        )
    if folder.exists() and not folder.is_dir():
        raise NbcellarError(f"{folder} is a file; give a folder for the demo project")
    copied = copy_project(folder)
    out = console()
    if copied:
        out.print(
            f"copied the example project into {folder}/: {', '.join(copied)}",
            soft_wrap=True,
            highlight=False,
        )
    else:
        out.print(
            f"using the example project in {folder}/ (its files are kept as they are)",
            soft_wrap=True,
            highlight=False,
        )
    if store_path(ctx) is None and not os.environ.get("NBCELLAR_STORE"):
        ctx.ensure_object(dict)["store"] = folder / ".nbcellar"
    notebook = folder / "digits.ipynb"
    ctx.invoke(
        run,
        notebook=notebook,
        output=None,
        params=(),
        grid_file=folder / "grid.yaml",
        strict=True,
        jobs=jobs,
        kernel_name=None,
        timeout=None,
        allow_errors=False,
        cwd=None,
        no_cache=False,
    )
    out.print()
    ctx.invoke(compare, run_ids=(), keys=(), as_json=False)
    target = folder / "report.html"
    ctx.invoke(report, run_ids=(), output=target, keys=(), title="nbcellar demo: digits")
    out.print(
        f"\nNext: open {target} in a browser; 'cd {folder}' and try 'nbcellar compare --key "
        "per_class', 'nbcellar runs', 'nbcellar show RUN'; edit a cell of digits.ipynb and run "
        "'nbcellar demo' again: only what the edit touches runs.",
        soft_wrap=True,
        highlight=False,
    )
