"""Run parameters, papermill's way: defaults in the cell tagged ``parameters``, the run's values
in a cell tagged ``injected-parameters`` inserted right after it.

Values given on the command line (``-p name=value``) parse as Python literals, else as YAML
(``rf`` is the string ``'rf'``, ``1e-3`` a float, ``[10, 100]`` a list). A list value, or a value
with top-level commas (``10,100``), is a set of choices: the runs are every combination of the
choices (a grid). A grid file holds a mapping of names to lists (their product) or a list of
such mappings (one grid each, runs in order). Bad values are reported before anything runs.
"""

from __future__ import annotations

import ast
import itertools
import keyword
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError
from nbcellar.notebook.model import Cell, CellId, Notebook

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
SMOKE_TAG = "smoke-parameters"  # the values a smoke test runs with (see nbcellar.smoke)
SKIP_TAG = "skip-execution"  # (nbmake's) a cell a smoke test leaves out

Params = dict[str, Any]
MAX_VALUE_CHARACTERS = 4000  # (Python's own limit on int digits is 4300)
MAX_GRID_NODES = 100_000  # values in a grid file once its YAML aliases are expanded


class ParameterError(NbcellarError):
    """A parameter or grid that cannot be used; nothing has run."""


def parse_value(text: str) -> Any:
    """A command-line value: a Python literal if it is one, else YAML (a bare word is a string)."""
    if len(text) > MAX_VALUE_CHARACTERS:
        raise ParameterError(
            f"a value of {len(text):,} characters (at most {MAX_VALUE_CHARACTERS:,}: put larger "
            "data in a file the notebook reads)"
        )
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    import yaml

    try:
        if text.lstrip().startswith((">", "|")):  # (YAML would read a block of text from it)
            raise yaml.YAMLError(text)
        if "," in text and not text.lstrip().startswith(("[", "{", "'", '"')):
            return yaml.safe_load(f"[{text}]")  # rf,svm: a list of choices
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        raise ParameterError(f"cannot read {text!r} as a value: a number, True/False, None, a "
                             "list [a, b], or text (quote text that starts with a symbol: "
                             f"\"'{text}'\")") from None  # fmt: skip


def _check_name(name: str, where: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ParameterError(f"{where}: {name!r} is not a valid Python name")


def parse_assignment(text: str) -> tuple[str, list[Any]]:
    """``name=value`` from ``-p``: the name and its choices (one, unless the value is a list)."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ParameterError(f"-p {text!r}: expected NAME=VALUE (e.g. -p n_estimators=100)")
    _check_name(name, f"-p {text!r}")
    try:
        value = parse_value(raw.strip())
    except ParameterError as exc:
        raise ParameterError(f"-p {name}: {exc}") from None
    if isinstance(value, list | tuple):
        choices = list(value)
        if not choices:
            raise ParameterError(f"-p {name}: an empty list gives no run")
        return name, choices
    return name, [value]


def _product(choices: Mapping[str, Sequence[Any]]) -> list[Params]:
    names = list(choices)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*choices.values())]


def read_grid(path: Path) -> list[Mapping[str, list[Any]]]:
    """A grid file: a mapping of names to values or lists, or a list of such mappings."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)  # (the node graph: aliases shared)
        if root is not None and _expanded_size(root) > MAX_GRID_NODES:
            raise ParameterError(
                f"{path}: its YAML aliases expand to more than {MAX_GRID_NODES:,} values; "
                "write the grid out"
            )
        data = yaml.safe_load(text)
    except OSError as exc:
        raise ParameterError(f"{path}: cannot read the grid ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ParameterError(f"{path}: not a text file (a grid is YAML)") from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ParameterError(f"{path}: not valid YAML ({first})") from None
    return grid_blocks(data, str(path))


def grid_blocks(data: Any, source: str) -> list[Mapping[str, list[Any]]]:
    """A grid (a mapping of names to lists of values, or a list of such mappings) checked:
    each mapping gives every combination of its values."""
    blocks = data if isinstance(data, list) else [data]
    grids: list[Mapping[str, list[Any]]] = []
    for number, block in enumerate(blocks, start=1):
        where = source if len(blocks) == 1 else f"{source}, entry {number}"
        if not isinstance(block, dict) or not block:
            raise ParameterError(
                f"{where}: expected a mapping of parameter names to lists of values"
            )
        grid: dict[str, list[Any]] = {}
        for name, value in block.items():
            _check_name(str(name), where)
            values = list(value) if isinstance(value, list | tuple) else [value]
            if not values:
                raise ParameterError(f"{where}: {name} has an empty list, which gives no run")
            grid[str(name)] = values
        grids.append(grid)
    return grids


def _expanded_size(root: Any) -> int:
    """How many nodes the YAML graph has once every alias is expanded, without expanding
    it (each shared node's size is counted once, then reused)."""
    sizes: dict[int, int] = {}
    opened: set[int] = set()  # (a node inside itself, ``&a [*a]``, is counted once)
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes or (not done and id(node) in opened):
            continue
        opened.add(id(node))
        value = getattr(node, "value", None)
        children: list[Any] = []
        if isinstance(value, list):
            for item in value:
                children += list(item) if isinstance(item, tuple) else [item]
        if done or not children:
            sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in children)
            if sizes[id(node)] > MAX_GRID_NODES:
                return sizes[id(node)]
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def expand(
    assignments: Iterable[str] = (),
    grid_file: Path | None = None,
    max_runs: int | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    grid: Any = None,
) -> list[Params]:
    """Every run's parameters, in order: the grid's runs (``grid_file``, or ``grid``: a
    mapping of names to lists, or a list of such mappings), each with the ``-p`` choices and
    the fixed ``params`` (one value each, as papermill's) crossed in; with neither, one run
    without parameters. More than ``max_runs`` runs is refused before any is made."""
    fixed: dict[str, list[Any]] = {}
    for text in assignments:
        name, choices = parse_assignment(text)
        if name in fixed:
            raise ParameterError(f"-p {name} is given twice")
        fixed[name] = choices
    for name, value in (params or {}).items():
        _check_name(str(name), "params")
        if name in fixed:
            raise ParameterError(f"parameter {name} is given twice")
        fixed[str(name)] = [value]
    if grid_file is not None:
        grids = read_grid(grid_file)
    elif grid is not None:
        grids = read_grid(Path(grid)) if isinstance(grid, str | Path) else grid_blocks(grid, "grid")
    else:
        grids = [{}]
    if max_runs is not None:
        count = sum(math.prod(len(v) for v in {**grid, **fixed}.values()) for grid in grids)
        if count > max_runs:
            raise ParameterError(
                f"the parameters make {count:,} runs, more than {max_runs:,}; give --max-runs "
                f"{count} to run them all"
            )
    runs: list[Params] = []
    for grid in grids:
        runs += _product({**grid, **fixed})
    return runs


# --- the notebook side


def parameters_cell(nb: Notebook) -> int | None:
    """Index (in ``nb.cells``) of the cell tagged ``parameters``, if any."""
    return next((i for i, c in enumerate(nb.cells) if c.has_tag(PARAMETERS_TAG)), None)


def declared(nb: Notebook) -> list[str]:
    """The names the ``parameters`` cell assigns, in the order the analysis reports them."""
    from nbcellar.analysis import analyze_cell

    index = parameters_cell(nb)
    if index is None:
        return []
    return sorted(analyze_cell(nb.cells[index].source).writes)


def unknown(nb: Notebook, params: Mapping[str, Any]) -> list[str]:
    """Names not assigned by the notebook's ``parameters`` cell (papermill warns about them)."""
    names = set(declared(nb))
    return [n for n in params if n not in names]


def inject(nb: Notebook, params: Mapping[str, Any]) -> Notebook:
    """The notebook with an ``injected-parameters`` cell holding ``params``: right after the
    ``parameters`` cell (at the top when there is none), replacing any earlier injected cell."""
    if not params:
        return nb
    source = "# Parameters\n" + "".join(f"{name} = {value!r}\n" for name, value in params.items())
    for name, value in params.items():
        try:
            if ast.literal_eval(repr(value)) != value:
                raise ValueError
        except (ValueError, SyntaxError):
            raise ParameterError(
                f"parameter {name}: {type(value).__name__} values cannot be written into a "
                "cell; use numbers, strings, booleans, None, lists or dicts"
            ) from None
    cells = [c for c in nb.cells if not c.has_tag(INJECTED_TAG)]
    kept = replace(nb, cells=tuple(cells))
    anchor = parameters_cell(kept)
    position = 0 if anchor is None else anchor + 1
    cell = Cell(
        "code",
        source.rstrip("\n"),
        id=CellId("injected-parameters") if nb.nbformat_minor >= 5 else None,
        metadata={"tags": [INJECTED_TAG]},
    )
    return replace(kept, cells=(*cells[:position], cell, *cells[position:]))


def label(params: Mapping[str, Any]) -> str:
    """``model=rf, n_estimators=10``: how a run is named in tables and file names."""
    return ", ".join(f"{name}={value!r}" if isinstance(value, str) and not value.isidentifier()
                     else f"{name}={value}" for name, value in params.items())  # fmt: skip


def short_label(params: Mapping[str, Any]) -> str:
    """:func:`label` for a table row: a pipeline task's ``upstream`` and ``product`` (dicts
    of absolute paths, the same for every run of the task) by their tasks' names and their
    files' names, ``upstream=clean,features, product=model.ipynb,model.pkl``."""
    parts = []
    for name, value in params.items():
        if name in ("upstream", "product") and isinstance(value, Mapping) and not value:
            continue  # (a first task's: nothing upstream)
        if name == "upstream" and isinstance(value, Mapping):
            parts.append(f"{name}={','.join(map(str, value))}")
        elif name == "product" and isinstance(value, Mapping):
            files = [os.path.basename(v) for v in value.values() if isinstance(v, str)]
            parts.append(f"{name}={','.join(files)}")
        else:
            parts.append(label({name: value}))
    return ", ".join(parts)


def smoke_values(nb: Notebook) -> dict[str, Any]:
    """The values the cells tagged ``smoke-parameters`` assign (``n = 100``)."""
    from nbcellar.runs.collect import assigned_literals

    found: dict[str, Any] = {}
    for cell in nb.cells:
        if cell.is_code and cell.has_tag(SMOKE_TAG):
            found.update(assigned_literals(cell.source))
    return found


def without_tagged(nb: Notebook, *tags: str) -> Notebook:
    """The notebook without its cells tagged one of ``tags``."""
    kept = tuple(c for c in nb.cells if not any(c.has_tag(t) for t in tags))
    return nb if len(kept) == len(nb.cells) else replace(nb, cells=kept)


def for_run(nb: Notebook, params: Mapping[str, Any], smoke: bool = False) -> Notebook:
    """The notebook a run executes: its ``smoke-parameters`` cells out, and ``params``
    injected; for its smoke test, their values under ``params`` and ``skip-execution`` cells
    out too."""
    values = smoke_values(nb) if smoke else {}
    tags = (SMOKE_TAG, SKIP_TAG) if smoke else (SMOKE_TAG,)
    return inject(without_tagged(nb, *tags), {**values, **params})
