"""``nbcellar.collect(paths)``: executed notebooks made by anything, compared like runs.

Each notebook is a run: its parameters are the values assigned in its ``injected-parameters``
cell (papermill's), else in its ``parameters`` cell; its values are the outputs of its tagged
cells (a cell tagged ``mse`` whose output is ``0.12``; a plot; a table). A RunSet of them gives
the same ``.params``, ``.values`` and ``collection["mse"]`` comparisons as recorded runs.
"""

from __future__ import annotations

import ast
import glob
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError
from nbcellar.runs.runset import RunSet


def assigned_literals(source: str) -> dict[str, Any]:
    """``name = literal`` assignments of a cell, in order (others are skipped)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is None:
                continue
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, SyntaxError, TypeError):
                continue
            for target in targets:
                if isinstance(target, ast.Name):
                    found[target.id] = value
    return found


class NotebookRun:
    """One executed notebook, as a run."""

    def __init__(self, path: Path, run_id: str) -> None:
        from nbcellar.notebook import read_notebook
        from nbcellar.runs.outputs import tagged_outputs, value_of
        from nbcellar.runs.params import INJECTED_TAG, PARAMETERS_TAG

        self.path = path
        self._id = run_id
        nb = read_notebook(path)
        params: dict[str, Any] = {}
        for tag in (PARAMETERS_TAG, INJECTED_TAG):  # injected values override the defaults
            for cell in nb.code_cells:
                if cell.has_tag(tag):
                    params |= assigned_literals(cell.source)
        self._params = params
        self._outputs = {t: value_of(o) for t, o in tagged_outputs(nb).items()}

    @property
    def id(self) -> str:
        return self._id

    @property
    def params(self) -> Mapping[str, Any]:
        return self._params

    @property
    def values(self) -> Mapping[str, Any]:
        return self._outputs

    def names(self) -> list[str]:
        return list(self._outputs)

    def history(self, key: str) -> list[Any]:
        return [self._outputs[key]] if key in self._outputs else []

    def __repr__(self) -> str:
        return f"<notebook {self.path} {dict(self.params)}>"


def _expand(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    found: list[Path] = []
    for item in items:
        text = str(item)
        if any(ch in text for ch in "*?["):
            found += [Path(p) for p in sorted(glob.glob(text, recursive=True))]
        elif Path(text).is_dir():
            found += sorted(Path(text).glob("*.ipynb"))
        elif Path(text).exists():
            found.append(Path(text))
        else:
            raise NbcellarError(f"no notebook {text} (give files, folders or a glob pattern)")
    return found


def collect(paths: str | Path | Iterable[str | Path], ids: Iterable[str] | None = None) -> RunSet:
    """Executed notebooks as a RunSet: ``nbcellar.collect("runs/*.ipynb")["accuracy"]``.
    ``paths``: files, folders (their .ipynb files) or glob patterns; ``ids`` names the runs
    (default: the file names without .ipynb)."""
    files = _expand(paths)
    if not files:
        raise NbcellarError(f"no executed notebooks found in {paths}")
    names = list(ids) if ids is not None else [f.name.removesuffix(".ipynb") for f in files]
    if len(names) != len(files):
        raise NbcellarError(f"{len(names)} ids given for {len(files)} notebooks")
    if len(set(names)) != len(names):
        names = [str(f) for f in files]  # same file names in different folders
    return RunSet([NotebookRun(f, n) for f, n in zip(files, names, strict=True)], str(paths))
