"""What a run record keeps of the code a notebook imports: the user's own modules only, never
an environment, installed packages, build output or what git ignores, wherever they are."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from nbcellar.runs.records import project_modules


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_only_the_users_own_modules_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    # A virtual environment inside the project, as the README, uv and poetry make it...
    packages = project / ".venv" / "lib" / "python3.11" / "site-packages"
    write(project / ".venv" / "pyvenv.cfg", "home = /usr/bin\n")
    write(packages / "libpkg" / "__init__.py", "from libpkg import inner\n")
    write(packages / "libpkg" / "inner.py")
    # ... one under another name, a conda environment, build output, node_modules.
    write(project / "tools-env" / "pyvenv.cfg", "home = /usr/bin\n")
    write(project / "tools-env" / "lib" / "envmod.py")
    write(project / "conda" / "conda-meta" / "history")
    write(project / "conda" / "lib" / "condamod.py")
    write(project / "build" / "lib" / "built.py")
    write(project / "node_modules" / "nodemod.py")
    write(project / "scratch" / "ignoredmod.py")
    write(project / "helper.py", "import libpkg\nimport ignoredmod\n\ndef f():\n    return 1\n")
    write(project / "src" / "mypkg" / "__init__.py", "from mypkg import core\n")
    write(project / "src" / "mypkg" / "core.py")
    for folder in (
        packages, project / "tools-env" / "lib", project / "conda" / "lib",
        project / "build" / "lib", project / "node_modules", project / "scratch", project / "src",
    ):  # fmt: skip
        monkeypatch.syspath_prepend(str(folder))
    git = shutil.which("git")
    if git is not None:
        subprocess.run([git, "init", "-q", str(project)], check=True)
        write(project / ".gitignore", "scratch/\n")
    imports = "import helper, libpkg, envmod, condamod, built, nodemod, ignoredmod, mypkg"
    notebook = project / "nb.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(imports)])
    nbformat.write(nb, notebook)

    kept = project_modules(notebook, project)

    expected = {"helper", "mypkg", "mypkg.core"} | ({"ignoredmod"} if git is None else set())
    assert set(kept) == expected


def test_a_run_whose_modules_did_not_change_adds_no_bytes(tmp_path: Path) -> None:
    import shutil

    from nbcellar.runs.records import RunBook
    from nbcellar.store import open_store

    project = tmp_path / "project"
    write(project / "helper.py", "VALUE = 1\n" + "# padding\n" * 10_000)
    notebook = project / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import helper")]),
                   notebook)  # fmt: skip
    store = open_store(project / ".nbcellar")
    book = RunBook(store)
    first = book.create(notebook, {}, None, "python3")
    book._modules.clear()  # (as a new command would look again)
    second = book.create(notebook, {}, None, "python3")
    copies = [book.folder(r.id) / "source" / "helper.py" for r in (first, second)]
    assert [c.read_text() for c in copies] == [(project / "helper.py").read_text()] * 2
    assert copies[0].stat().st_ino == copies[1].stat().st_ino  # one file, linked twice
    size = (project / "helper.py").stat().st_size
    info = store.info()
    assert size <= info.runs_bytes < 2 * size  # counted once
    # Both runs gone: the kept copy goes at the next gc.
    for record in (first, second):
        shutil.rmtree(book.folder(record.id))
    assert store.gc().freed_bytes >= size
    assert store.info().runs_bytes < size
    store.close()
