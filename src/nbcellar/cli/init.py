"""``nbcellar init [FOLDER]``: a new project (see nbcellar.project)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("folder", type=click.Path(path_type=Path), default=Path("."))
@click.option("--package", default=None, help="The shared code's package name (default: from "
              "the folder's name).")  # fmt: skip
@click.option("--paired", is_flag=True, help="Pair each task with a .ipynb (jupytext), to "
              "open in Jupyter.")  # fmt: skip
@click.option("--no-install", is_flag=True, help="Do not install the package (editable).")
def init(folder: Path, package: str | None, paired: bool, no_install: bool) -> None:
    """Create a project in FOLDER (default: here): a pipeline of tasks, a package they
    share, its tests, pipeline.yaml with a smoke profile, .gitignore, README."""
    from nbcellar.project import init as make

    made = make(folder, package=package, paired=paired, install=not no_install)
    for path in made.files:
        click.echo(f"wrote {path.relative_to(made.folder)}")
    click.echo(f"package {made.package}: {made.installed}")
    where = "" if made.folder == Path.cwd().resolve() else f"cd {folder} && "
    first = "" if made.installed == "installed editable" else "install the package (above), then "
    import importlib.util

    tests = "pytest" if importlib.util.find_spec("pytest") else "pip install pytest; pytest"
    click.echo(f"next: {first}{where}nbcellar build   (then: nbcellar test, {tests})")
