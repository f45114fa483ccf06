"""``nbcellar init [FOLDER]``: a project a data scientist can work in at once.

It writes ``pipeline.yaml`` (three tasks and a smoke profile), ``tasks/`` (percent scripts;
with ``paired=True`` each paired with a ``.ipynb`` through jupytext, to open in Jupyter),
``src/<package>/`` (the reusable code, importable from every task), ``pyproject.toml``
(that package, installed editable into this environment unless ``install=False``: see
:func:`_install`),
``tests/`` (a test of the package), ``.gitignore`` (the store, the build's manifests, the
products, executed notebooks) and a ``README.md`` saying the commands. The example tasks use
only the standard library (generated data), so ``nbcellar build`` and ``nbcellar test``
work at once. Files already there are never overwritten: an existing file is one error, and
nothing is written.
"""

from __future__ import annotations

import keyword
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from nbcellar.errors import NbcellarError

PIPELINE = """\
# Tasks run in this folder, in order; each runs only the cells whose inputs changed.
smoke:  # what `nbcellar test` runs the tasks with
  rows: 50
tasks:
  - source: tasks/load.py
    product: {{nb: products/load.ipynb, data: products/rows.csv}}
  - source: tasks/features.py
  - source: tasks/report.py
"""

LOAD = """\
# %% [markdown]
# # Load: generated rows (replace with your data)

# %% tags=["parameters"]
upstream = None
product = None
rows = 10_000

# %%
import csv
import random

rng = random.Random(0)
data = [(i, rng.gauss(0, 1), rng.choice(["a", "b", "c"])) for i in range(rows)]

# %%
with open(product["data"], "w", newline="") as handle:
    csv.writer(handle).writerows(data)
"""

FEATURES = """\
# %% [markdown]
# # Features, from what `load` produced

# %% tags=["parameters"]
upstream = ["load"]

# %%
import csv

import nbcellar
from {package} import summarize

with open(upstream["load"]["data"]) as handle:
    values = [float(row[1]) for row in csv.reader(handle)]

# %%
features = summarize(values)
nbcellar.log(**features)
"""

REPORT = """\
# %% [markdown]
# # Report

# %% tags=["parameters"]
upstream = ["features"]

# %%
import nbcellar

features = nbcellar.upstream("features")["features"]
print(f"mean {{features['mean']:.3f}}, spread {{features['spread']:.3f}}")
"""

PACKAGE = '''\
"""{package}: the code the tasks share (import it from any task)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def summarize(values: Sequence[float]) -> dict[str, float]:
    """The mean and the spread (standard deviation) of ``values``."""
    return {{"mean": statistics.fmean(values), "spread": statistics.pstdev(values)}}
'''

TEST = """\
from {package} import summarize


def test_summarize_gives_the_mean_and_the_spread() -> None:
    assert summarize([1.0, 3.0]) == {{"mean": 2.0, "spread": 1.0}}
"""

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["nbcellar"]

[tool.setuptools.packages.find]
where = ["src"]
"""

GITIGNORE = """\
# nbcellar: the store (carry it between CI runs with a cache step instead), the build's
# manifests, smoke tests' outputs, the products, executed notebooks
.nbcellar/
.nbcellar-build/
.nbcellar-smoke/
products/
*.out.ipynb
*.runs/
__pycache__/
.ipynb_checkpoints/
*.egg-info/
"""

README = """\
# {name}

Notebooks as a pipeline, with [nbcellar](https://pypi.org/project/nbcellar/).

- `tasks/`: the pipeline's tasks, percent scripts{paired} (declared in `pipeline.yaml`);
- `src/{package}/`: the code they share, installed editable (`pip install -e .`);
- `tests/`: its tests (`pytest`).

Commands:

    nbcellar build             # run the tasks; next time, only what changed
    nbcellar build --explain   # what would run, and why
    nbcellar test              # every task small (the smoke: values), as CI does
    pytest                     # the package's tests (pip install pytest)
    pytest --nbcellar          # those tests and each task's smoke test, as pytest items
"""


@dataclass(frozen=True)
class Made:
    folder: Path
    package: str
    files: tuple[Path, ...]
    installed: str  # how the package was installed, or the command to run


def package_name(folder: Path) -> str:
    """An importable name from the folder's: ``My Project`` -> ``my_project``."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", folder.name).strip("_").lower() or "project"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"project_{name}"
    return name


def init(
    folder: str | Path = ".", *, package: str | None = None, paired: bool = False,
    install: bool = True,
) -> Made:  # fmt: skip
    """Write the project (see the module) into ``folder``."""
    root = Path(folder).resolve()
    name = package or package_name(root)
    if not name.isidentifier() or keyword.iskeyword(name):
        raise NbcellarError(f"package name {name!r} is not a Python identifier; pass another "
                            "(--package)")  # fmt: skip
    files = {
        "pipeline.yaml": PIPELINE.format(),
        "tasks/load.py": LOAD,
        "tasks/features.py": FEATURES.format(package=name),
        "tasks/report.py": REPORT.format(),
        f"src/{name}/__init__.py": PACKAGE.format(package=name),
        f"tests/test_{name}.py": TEST.format(package=name),
        "pyproject.toml": PYPROJECT.format(name=name.replace("_", "-")),
        ".gitignore": GITIGNORE,
        "README.md": README.format(name=root.name, package=name,
                                   paired=" paired with notebooks" if paired else ""),
    }  # fmt: skip
    paired_files = [f"tasks/{t}.ipynb" for t in ("load", "features", "report")] if paired else []
    there = [p for p in [*files, *paired_files] if (root / p).exists()]
    if there:
        raise NbcellarError(f"{root / there[0]} exists; nbcellar init writes only new files "
                            "(use an empty folder, or move it away)")  # fmt: skip
    written: list[Path] = []
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if paired and relative.startswith("tasks/"):
            text = _paired_header() + text
        path.write_text(text, encoding="utf-8")
        written.append(path)
    for relative in paired_files:
        written.append(_pair(root / relative))
    installed = _install(root) if install else f"{sys.executable} -m pip install -e {root}"
    return Made(root, name, tuple(written), installed)


def _paired_header() -> str:
    return "# ---\n# jupyter:\n#   jupytext:\n#     formats: ipynb,py:percent\n# ---\n\n"


def _pair(notebook: Path) -> Path:
    """The .ipynb of a percent script, paired through jupytext (either file can be edited;
    jupytext keeps them in step when Jupyter saves)."""
    import jupytext

    nb = jupytext.read(notebook.with_suffix(".py"))
    jupytext.write(nb, notebook, fmt="ipynb")
    return notebook


def _install(root: Path) -> str:
    """Install the project editable into this environment: with the build backend already
    installed if it can (nothing fetched), else as pip does by default (it fetches setuptools
    from the package index for the build); if neither works, the command to run."""
    base = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    done = None
    for extra in (["--no-build-isolation"], []):
        done = subprocess.run([*base, *extra, "-e", str(root)], capture_output=True, text=True,
                              check=False)  # fmt: skip
        if done.returncode == 0:
            return "installed editable"
    assert done is not None
    return f"not installed ({_last(done.stderr)}); run: {sys.executable} -m pip install -e {root}"


def _last(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "pip failed"
