"""``nbcellar.submit("train(model, data)")``: the part of an interactive notebook an expression
needs, run as a job.

The kernel's cell cache keeps, cell by cell, what ran (see
:class:`nbcellar.kernel.extension.RanCell`). The dependency graph of those cells
(:mod:`nbcellar.analysis.graph`), with the expression as a last cell, gives the cells the value
needs: the cells that made what it reads, and what those read in turn. Cells that changed the
kernel's state outside its variables (``sys.path``, the working directory, ``os.environ``, a
random generator's state, library options) go in too, with what they need: re-running the
slice must give the value the expression would give here. Exploratory cells (a plot, ``df.head()``,
a cell that failed) are left out.

The slice becomes a notebook run like any other (``nbcellar.run``, in the kernel's working
directory, on the kernel's store): its cells that are cached there are restored on the worker,
not recomputed; the project modules it imports are shipped with it; its record is in ``nbcellar
runs`` and its launch in ``nbcellar jobs``. The value comes back logged under ``result``.

A value the slice reads that no cell made (set from a callback, or by a cell that failed) is
sent along as a value, when it can be stored; one that cannot is named before anything is
sent. In a notebook whose file the kernel knows (Jupyter gives its path), a slice cell that is
no longer in the file (typed at a console attached to the kernel, or deleted since) is named
too, with what it made: a job must be reproducible from the notebook.
"""

from __future__ import annotations

import ast
import builtins
import html
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError

RESULT = "_nbcellar_result"
LOGGED = "result"  # the name the job logs its value under
SHIPPED_KIND = "slice values"  # a record keeping the snapshot of values sent along
_LOAD_EXT = re.compile(r"^\s*%\s*(re)?load_ext\s+nbcellar\s*$", re.MULTILINE)


class SliceError(NbcellarError):
    """A slice that cannot be sent: what, where, and what to do; nothing was sent."""


@dataclass(frozen=True)
class SliceCell:
    """A cell of the slice: its number in the kernel (``In[n]``), its code, why it is in."""

    number: int | None
    source: str
    why: str

    @property
    def label(self) -> str:
        return "In[?]" if self.number is None else f"In[{self.number}]"


@dataclass(frozen=True)
class Slice:
    """What ``submit`` would send: the cells in order, the values sent along (name -> type),
    the parameters and the cells run so far left out."""

    expression: str
    cells: tuple[SliceCell, ...]
    left_out: tuple[str, ...]
    shipped: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)  # name -> where it is set
    modules: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [f"the slice of `{self.expression}`: {len(self.cells)} of "
                 f"{len(self.cells) + len(self.left_out)} cells run so far"]  # fmt: skip
        for cell in self.cells:
            lines.append(f"  {cell.label:<8} {_first_line(cell.source, 48):<50} {cell.why}")
        if self.left_out:
            lines.append(f"  left out (not needed): {', '.join(self.left_out)}")
        for name, type_name in self.shipped.items():
            lines.append(f"  sent as a value: {name} ({type_name}; no cell run so far made it)")
        for name, where in self.parameters.items():
            lines.append(f"  parameter {name}: {where}")
        if self.modules:
            lines.append(f"  project modules sent: {', '.join(self.modules)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr><td>{esc(c.label)}</td><td><pre style='margin:0'>{esc(c.source)}</pre></td>"
            f"<td>{esc(c.why)}</td></tr>"
            for c in self.cells
        )
        notes = []
        if self.left_out:
            notes.append(f"left out (not needed): {esc(', '.join(self.left_out))}")
        notes += [f"sent as a value: <code>{esc(n)}</code> ({esc(t)}; no cell run so far made it)"
                  for n, t in self.shipped.items()]  # fmt: skip
        notes += [f"parameter <code>{esc(n)}</code>: {esc(w)}" for n, w in self.parameters.items()]
        if self.modules:
            notes.append(f"project modules sent: {esc(', '.join(self.modules))}")
        items = "".join(f"<li>{n}</li>" for n in notes)
        return (
            f"<div><b>the slice of <code>{esc(self.expression)}</code></b>: {len(self.cells)} of "
            f"{len(self.cells) + len(self.left_out)} cells run so far"
            f"<table><tr><th>cell</th><th>code</th><th>why</th></tr>{rows}</table>"
            f"<ul>{items}</ul></div>"
        )


def _first_line(source: str, width: int) -> str:
    lines = [line for line in source.strip().splitlines() if line.strip()] or [""]
    first = lines[0] + (" …" if len(lines) > 1 else "")
    return first if len(first) <= width else first[: width - 1] + "…"


# -- the slice ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Planned:
    slice: Slice
    cells: tuple[tuple[SliceCell, Any], ...]  # with each cell's analysis
    values: dict[str, Any]  # the values sent along
    anchor: int | None  # the position of the cell setting the parameters' defaults


def expression_cell(expression: str) -> str:
    """The slice's last cell: the value, logged as ``result``."""
    return f"{RESULT} = ({expression})\n__import__('nbcellar').log({LOGGED}={RESULT})"


def check_expression(expression: Any) -> str:
    if not isinstance(expression, str) or not expression.strip():
        raise SliceError(f"submit({expression!r}): give the expression to compute as a string, "
                         "e.g. submit(\"train(model, data)\")")  # fmt: skip
    text = expression.strip()
    try:
        ast.parse(text, mode="eval")
    except SyntaxError as exc:
        try:
            ast.parse(text)
        except SyntaxError:
            raise SliceError(f"submit({text!r}): not Python ({exc.msg}); give an expression, "
                             "e.g. submit(\"train(model, data)\")") from None  # fmt: skip
        raise SliceError(
            f"submit({text!r}): a statement, not an expression; give the "
            "expression whose value you want (the call, without 'x =')"
        ) from None
    return text


def plan_slice(
    expression: str,
    ran: Sequence[Any],
    namespace: Mapping[str, Any],
    parameters: Sequence[str] = (),
    notebook: Path | None = None,
) -> _Planned:
    """The cells of ``ran`` (RanCell, in order) that ``expression`` needs; see the module."""
    from nbcellar.analysis.cell import analyze_cell
    from nbcellar.analysis.graph import build_graph

    kept: list[tuple[Any, str, Any]] = []  # (ran cell, source, analysis)
    failed: list[str] = []
    for cell in ran:
        source = _LOAD_EXT.sub("", cell.source)
        if not source.strip():
            continue
        if not cell.success or cell.submitted:  # (a job never submits jobs itself)
            failed.append(_label(cell.number))
            continue
        analysis = analyze_cell(source)
        if analysis.syntax_error:
            continue
        if cell.effect is not None:  # what it did, not all it might have done
            written, mutated = cell.effect
            analysis = replace(analysis, writes=analysis.writes | written, mutated=mutated)
        kept.append((cell, source, analysis))
    last = analyze_cell(expression_cell(expression))
    graph = build_graph([a for _, _, a in kept] + [last])
    end = len(kept)
    needed = set(graph.upstream(end))
    for i, (cell, _, _) in enumerate(kept):
        if cell.changed_state:
            needed |= {i, *graph.upstream(i)}
    order = sorted(needed)
    # What each kept cell makes that a later one in the slice (or the expression) reads.
    made_for: dict[int, set[str]] = {i: set() for i in order}
    for i, j in graph.reasons:
        if i in needed and (j in needed or j == end):
            made_for[i] |= {n for n in graph.reasons[(i, j)] if n != "*"}
    names = set(parameters)
    cells: list[tuple[SliceCell, Any]] = []
    for i in order:
        cell, source, analysis = kept[i]
        why = []
        if made_for[i]:
            why.append("makes " + ", ".join(sorted(made_for[i])))
        if cell.changed_state:
            why.append("changes " + ", ".join(sorted(cell.changed_state)))
        cells.append((SliceCell(cell.number, source, "; ".join(why) or "needed"), analysis))
    left_out = [_label(kept[i][0].number) for i in range(len(kept)) if i not in needed]
    left_out = sorted([*left_out, *failed], key=_number)

    unknown_writer = any(a.writes_unknown for _, a in cells)
    made = {n for _, a in cells for n in a.writes}
    undefined = sorted(n for n in last.reads - made - {RESULT, "__import__"}
                       if n not in namespace and not hasattr(builtins, n))  # fmt: skip
    if undefined and not unknown_writer and not set(undefined) <= set(parameters):
        raise SliceError(f"`{expression}` reads {', '.join(undefined)}, which no cell run so far "
                         "defined: run the cell that defines it, then submit again")  # fmt: skip
    unmade = _unmade([a for _, a in cells] + [last], namespace)
    if notebook is not None:
        _check_in_notebook(expression, cells, made_for, order, notebook)
    values: dict[str, Any] = {}
    for name in unmade:
        if name in names or unknown_writer:
            continue
        values[name] = namespace[name]
    stray = [n for n in parameters
             if not any(n in a.reads | a.writes | a.mutated for _, a in cells)
             and n not in last.reads]  # fmt: skip
    if stray:
        used = sorted({n for _, a in cells for n in a.writes} - {RESULT})
        raise SliceError(
            f"params: the slice of `{expression}` never uses {', '.join(stray)} (its cells set: "
            f"{', '.join(used[:12]) or 'nothing'}); pass only names its cells set or read"
        )
    anchor, where = _anchor(expression, cells, parameters)
    planned = Slice(
        expression, tuple(c for c, _ in cells), tuple(left_out),
        {n: type(v).__name__ for n, v in values.items()}, where,
    )  # fmt: skip
    return _Planned(planned, tuple(cells), values, anchor)


def _label(number: int | None) -> str:
    return "In[?]" if number is None else f"In[{number}]"


def _number(label: str) -> int:
    digits = label[3:-1]
    return int(digits) if digits.isdigit() else -1


def _unmade(analyses: Sequence[Any], namespace: Mapping[str, Any]) -> list[str]:
    """Names the cells read, in order, before any of them set it, that the kernel holds."""
    from nbcellar.cache.inputs import is_ipython_name

    made: set[str] = set()
    found: list[str] = []
    for analysis in analyses:
        for name in sorted(analysis.reads | analysis.mutated):
            if name in made or name in found or name == RESULT:
                continue
            if name in namespace and not is_ipython_name(name) and not _builtin(name, namespace):
                found.append(name)
        made |= analysis.writes
    return found


def _builtin(name: str, namespace: Mapping[str, Any]) -> bool:
    return hasattr(builtins, name) and namespace.get(name) is getattr(builtins, name)


def _anchor(
    expression: str, cells: Sequence[tuple[SliceCell, Any]], parameters: Sequence[str]
) -> tuple[int | None, dict[str, str]]:
    """Where the parameters go (papermill's way: right after the cell that sets their
    defaults, the last such cell when they are set in several), and where each is set."""
    first: dict[str, int] = {}
    for name in parameters:
        for position, (_, analysis) in enumerate(cells):
            if name in analysis.writes:
                first[name] = position
                break
    where = {n: (f"set in {cells[first[n]][0].label}, given by the job" if n in first
                 else "given by the job (no cell of the slice sets it)")
             for n in parameters}  # fmt: skip
    if not first:
        return None, where
    anchor = max(first.values())
    for name, position in first.items():
        for between in range(position + 1, anchor + 1):
            cell, analysis = cells[between]
            if name in analysis.reads | analysis.mutated:
                other = cells[anchor][0].label
                raise SliceError(
                    f"params: {name} is set in {cells[position][0].label} and used in "
                    f"{cell.label} before {other} sets the other parameters; the job's values go "
                    f"after {other}, too late for {cell.label}: set the parameters in one cell, "
                    "then submit again"
                )
    return anchor, where


def _check_in_notebook(
    expression: str,
    cells: Sequence[tuple[SliceCell, Any]],
    made_for: Mapping[int, set[str]],
    order: Sequence[int],
    notebook: Path,
) -> None:
    """Every cell of the slice must be a cell of the notebook's file (as last saved)."""
    from nbcellar.notebook import read_notebook

    try:
        nb = read_notebook(notebook)
    except Exception:  # (an unreadable notebook: nothing to compare with)
        return
    present = {_normal(_LOAD_EXT.sub("", c.source)) for c in nb.code_cells}
    for (cell, _), i in zip(cells, order, strict=True):
        if _normal(cell.source) in present:
            continue
        made = ", ".join(sorted(made_for.get(i, ()))) or "what it changed"
        raise SliceError(
            f"{cell.label} ({_first_line(cell.source, 40)!r}) made {made}, which `{expression}` "
            f"needs, but it is not a cell of {notebook.name} (typed at a console, or a cell "
            "deleted or edited since it ran): put that code in a cell and run it (or save the "
            "notebook), then submit again"
        )


def _normal(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


# -- submitting -------------------------------------------------------------------------------


def _extension() -> Any:
    from IPython import get_ipython

    from nbcellar.kernel.extension import ATTRIBUTE, CellCacheExtension

    shell = get_ipython()
    extension = getattr(shell, ATTRIBUTE, None) if shell is not None else None
    if not isinstance(extension, CellCacheExtension):
        where = "this IPython shell" if shell is not None else "plain Python"
        raise SliceError(
            f"nbcellar.submit slices the cells run in a notebook, and {where} has no cells "
            "recorded: run '%load_ext nbcellar' in the notebook first (for a whole notebook "
            "or script, use nbcellar.run(PATH))"
        )
    return extension


def notebook_of(namespace: Mapping[str, Any]) -> Path | None:
    """The notebook file the kernel runs, when its front end says (Jupyter's ``__session__``,
    VS Code's ``__vsc_ipynb_file__``)."""
    for name in ("__vsc_ipynb_file__", "__session__"):
        value = namespace.get(name)
        if isinstance(value, str) and value.endswith(".ipynb"):
            path = Path(value)
            if path.is_file():
                return path
    return None


def submit(
    expression: str,
    *,
    params: Mapping[str, Any] | None = None,
    grid: Any = None,
    executor: Any = None,
    jobs: int | None = None,
    retries: int = 1,
    timeout: float | None = None,
    dry_run: bool = False,
    kernel: str | None = None,
) -> Any:
    """Run the cells ``expression`` needs as a job; see the module. Returns a :class:`SliceJob`
    (a list of them with ``grid``: one per parameter set), or the :class:`Slice` itself with
    ``dry_run=True`` (nothing is sent)."""

    from nbcellar.runs import params as parameters
    from nbcellar.runs.api import MAX_RUNS
    from nbcellar.runs.launch import executor_for

    text = check_expression(expression)
    extension = _extension()
    if params is not None and not isinstance(params, Mapping):
        raise SliceError(f"params={params!r}: a mapping of names to values")
    sets = parameters.expand((), None, MAX_RUNS, params=params, grid=grid)
    names = list(dict.fromkeys(n for s in sets for n in s))
    namespace = extension.shell.user_ns
    planned = plan_slice(text, extension.ran, namespace, names, notebook_of(namespace))
    nb = slice_notebook(planned, "")
    cwd = Path.cwd()
    modules = _modules(nb, cwd)
    shown = replace(planned.slice, modules=tuple(modules))
    if dry_run:
        return shown
    executor_for(executor)  # (an unknown one stops here, before anything is written)
    # The cell submitting always runs (run again, it submits again) and is no job's part.
    extension.submitting = True
    extension.volatile("it submits a job (nbcellar.submit)", {})
    store = extension.cache.store
    if planned.values:
        unstorable = _unstorable(planned.values)
        if unstorable:
            name, why = unstorable
            raise SliceError(
                f"`{text}` needs {name}, which no cell run so far made (set from outside a "
                f"cell, or by a cell that failed) and which cannot be sent to a worker ({why}): "
                f"make {name} in a cell, then submit again"
            )
    root = Path(store.root)
    folder = root / "slices" / (time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3))
    folder.mkdir(parents=True)
    snapshot = _send_values(store, planned.values) if planned.values else ""
    path = folder / (_slug(text) + ".ipynb")
    from nbcellar.notebook import write_notebook

    write_notebook(slice_notebook(planned, snapshot), path)
    store.flush()
    from nbcellar.runs.api import run

    output = folder / "runs" if len(sets) > 1 else folder / (path.stem + ".out.ipynb")
    handle = run(
        path, params, grid=grid, jobs=jobs, executor=executor, retries=retries, store=root,
        output=output, kernel=kernel, timeout=timeout, cwd=cwd, wait=False,
        allow_errors=True, strict=True,
    )  # fmt: skip
    launched = handle._launched
    records = launched.records.records if launched is not None else {}
    made = [SliceJob(str(r.id), handle, root, shown) for _, r in sorted(records.items())]
    return made if grid is not None else made[0]


def _modules(nb: Any, cwd: Path) -> list[str]:
    from nbcellar.analysis.cell import analyze_cell
    from nbcellar.cache.sources import project_sources

    names = sorted({m for c in nb.code_cells for m in analyze_cell(c.source).imports})
    found = project_sources(names, [cwd.resolve()])
    shown = []
    for path in found.values():
        try:
            shown.append(Path(path).resolve().relative_to(cwd.resolve()).as_posix())
        except ValueError:
            shown.append(str(path))
    return sorted(shown)


def _unstorable(values: Mapping[str, Any]) -> tuple[str, str] | None:
    import cloudpickle

    for name, value in values.items():
        try:
            cloudpickle.dumps(value)
        except Exception as exc:  # (what the store would say of it)
            return name, f"{type(value).__name__}: {str(exc).splitlines()[0][:120]}"
    return None


def _send_values(store: Any, values: Mapping[str, Any]) -> str:
    """The values sent along, saved as a snapshot a record keeps (gc keeps it)."""
    snapshot = store.save_namespace(dict(values), label="values sent with a slice")
    bad = [v for v in snapshot.variables if not v.stored]
    if bad:
        raise SliceError(f"{bad[0].name} cannot be sent to a worker ({bad[0].unserializable}): "
                         f"make {bad[0].name} in a cell, then submit again")  # fmt: skip
    store.put_record(SHIPPED_KIND, str(snapshot.id), b"{}", snapshot.id)
    return str(snapshot.id)


def shipped(snapshot: str, *names: str) -> tuple[Any, ...]:
    """In a slice's first cell: the values sent along with it, in the order of ``names``."""
    from nbcellar.store import open_store

    store = open_store()
    try:
        found = store.load_namespace(snapshot, names)
    finally:
        store.close()
    missing = [n for n in names if n not in found]
    if missing:
        raise SliceError(f"the values sent with this slice are not in {store.root} "
                         f"({', '.join(missing)}): submit it again")  # fmt: skip
    return tuple(found[n] for n in names)


def slice_notebook(planned: _Planned, snapshot: str) -> Any:
    """The slice as a notebook: the values sent along, its cells (the one setting the
    parameters' defaults tagged ``parameters``), the expression."""
    from nbcellar.notebook.model import Cell, Notebook
    from nbcellar.runs.params import PARAMETERS_TAG

    cells: list[Cell] = []
    if planned.values:
        names = list(planned.values)
        targets = ", ".join(names) + ("," if len(names) == 1 else "")
        arguments = ", ".join(repr(n) for n in names)
        cells.append(Cell("code", f"{targets} = __import__('nbcellar.slices', fromlist=['_'])"
                                  f".shipped({snapshot!r}, {arguments})"))  # fmt: skip
    if planned.slice.parameters and planned.anchor is None:
        cells.append(Cell("code", "# parameters", metadata={"tags": [PARAMETERS_TAG]}))
    for position, (cell, _) in enumerate(planned.cells):
        tags = [PARAMETERS_TAG] if position == planned.anchor else []
        cells.append(Cell("code", cell.source, metadata={"tags": tags} if tags else {}))
    cells.append(Cell("code", expression_cell(planned.slice.expression)))
    metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "nbcellar": {"slice of": planned.slice.expression},
    }
    return Notebook(tuple(cells), metadata=metadata, nbformat=4, nbformat_minor=4)


def _slug(expression: str) -> str:
    words = re.findall(r"[A-Za-z0-9_]+", expression)
    return ("-".join(words[:3]) or "slice")[:40]


# -- the job ----------------------------------------------------------------------------------


class SliceJob:
    """One submitted slice (one parameter set): ``status()``, ``wait()``, ``result()``,
    ``logs()``, ``checkpoints``, ``analyze(fn)``, ``cancel()``. Its run is in ``nbcellar
    runs``, its launch (``launch``) in ``nbcellar jobs``."""

    def __init__(self, run_id: str, handle: Any, store_root: Path, slice_: Slice) -> None:
        self.id = run_id
        self.launch = handle.id
        self.slice = slice_
        self.store_root = store_root
        self._handle = handle

    def __repr__(self) -> str:
        return f"<nbcellar job {self.id} ({self.slice.expression}): {self.status()}>"

    def _record(self) -> Any:
        from nbcellar.runs.records import RunBook
        from nbcellar.store import open_store

        store = open_store(self.store_root)
        try:
            return RunBook(store).get(self.id)
        finally:
            store.close()

    @property
    def params(self) -> dict[str, Any]:
        record = self._record()
        return {} if record is None else dict(record.params)

    def status(self) -> str:
        """queued, running, ok, failed, cancelled or died."""
        record = self._record()
        return "unknown" if record is None else str(record.status)

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> SliceJob:
        """Until the job ended (TimeoutError after ``timeout`` seconds)."""
        from nbcellar.runs.jobs import ENDED

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.status() not in ENDED:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.id} not ended after {timeout} s "
                                   f"({self.status()})")  # fmt: skip
            time.sleep(poll)
        launched = self._handle._launched
        if launched is not None:  # (this process launched it: its outputs are written)
            launched.wait()
        return self

    def result(self, timeout: float | None = None) -> Any:
        """The expression's value, restored from the store (waits for the job)."""
        from nbcellar.runs.api import RunFailed
        from nbcellar.runs.runset import RecordedRun

        self.wait(timeout)
        record = self._record()
        if record is None:
            raise SliceError(f"job {self.id}: no record of it in {self.store_root}")
        if record.status != "ok":
            why = record.error or record.status
            raise RunFailed(f"job {self.id} ({self.slice.expression}) {record.status}: {why}; "
                            "see job.logs()", [record])  # fmt: skip
        found = RecordedRun(record, self.store_root).history(LOGGED)
        if not found:
            raise SliceError(f"job {self.id} ended without its value (nothing logged as "
                             f"{LOGGED!r}); see job.logs()")  # fmt: skip
        return found[-1]

    def logs(self) -> str:
        """What the job's cells printed (streams, then a failed cell's traceback), so far."""
        from nbcellar.notebook import read_notebook

        record = self._record()
        candidates = [self.store_root / "runs" / self.id / "executed.ipynb"]
        if record is not None and record.output:
            candidates.insert(0, Path(record.output))
        for path in candidates:
            if path.is_file():
                return _printed(read_notebook(path))
        return ""

    @property
    def checkpoints(self) -> Any:
        from nbcellar.runs.runset import RecordedRun

        return RecordedRun(self._record(), self.store_root).checkpoints

    def analyze(self, fn: Any, executor: str | None = None, jobs: int | None = None) -> Any:
        from nbcellar.runs.runset import RecordedRun

        return RecordedRun(self._record(), self.store_root).analyze(fn, executor, jobs)

    def cancel(self) -> None:
        """Stop the job's launch (with ``grid``, every parameter set of it not ended)."""
        self._handle.cancel()


def _printed(nb: Any) -> str:
    parts: list[str] = []
    for cell in nb.code_cells:
        for output in cell.outputs:
            kind = output.get("output_type")
            if kind == "stream":
                text = output.get("text", "")
                parts.append(text if isinstance(text, str) else "".join(text))
            elif kind == "error":
                parts.append("\n".join(_plain(line) for line in output.get("traceback", ())))
                parts.append("\n")
    return "".join(parts)


def _plain(line: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", line)
