"""A pipeline's tasks, read and checked before anything runs.

Two ways to declare one, as ploomber's users do:

- ``pipeline.yaml`` in the pipeline's folder: ``tasks:``, each with ``source`` (a ``.ipynb``
  or a percent script, relative to the folder), and optionally ``name`` (default: the
  source's stem), ``product`` (the executed notebook's path, or a mapping whose ``nb`` is
  that path and whose other entries are files the task writes), ``params``, ``upstream``
  (task names; else the ``upstream`` list of the source's ``parameters`` cell);
- no ``pipeline.yaml``: every notebook and percent script in the folder and in its
  ``tasks/`` subfolder whose ``parameters`` cell assigns ``upstream`` (a list of task names,
  or ``None`` for a first task) is a task.

A task's executed notebook goes to ``products/<name>.ipynb`` unless its product says
otherwise. Every task runs with the pipeline's folder as its working folder, so relative paths
mean the same in every task. A cycle, an unknown upstream, a missing source, two tasks of one
name or one product: each is one line (:class:`PipelineError`), before anything runs.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError

SPEC = "pipeline.yaml"
SOURCES = (".ipynb", ".py")
_TASK_FIELDS = {"source", "name", "product", "params", "grid", "upstream", "smoke"}
_PIPELINE_FIELDS = {"tasks", "smoke"}
SMOKE = "smoke"  # the profile of smoke tests (nbcellar test): its parameters, its products
MAX_GRID = 1000  # tasks one grid may expand into


class PipelineError(NbcellarError):
    """The pipeline cannot be built as declared (one line: what, where, what to do)."""


@dataclass(frozen=True)
class Task:
    name: str
    source: Path
    upstream: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    output: Path = Path()  # the executed notebook
    files: Mapping[str, Path] = field(default_factory=dict)  # the other products, by key
    group: str | None = None  # the task a grid expanded into this one (and others)

    @property
    def products(self) -> dict[str, Path]:
        """Every product by key, the executed notebook as ``nb``."""
        return {"nb": self.output, **self.files}


@dataclass(frozen=True)
class Pipeline:
    root: Path
    tasks: Mapping[str, Task]  # in a topological order: each after its upstream
    spec: Path | None = None  # pipeline.yaml, when declared there
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # grid -> its tasks

    def members(self, name: str) -> tuple[str, ...]:
        """The tasks ``name`` stands for: itself, or the tasks its grid expanded into."""
        return self.groups.get(name, (name,))

    def closure(self, names: Sequence[str]) -> list[str]:
        """``names`` and every task they need, in the pipeline's order."""
        unknown = [n for n in names if n not in self.tasks and n not in self.groups]
        if unknown:
            known = [*self.groups, *(n for n, t in self.tasks.items() if t.group is None)]
            raise PipelineError(f"no task {unknown[0]!r} in the pipeline of {self.root} (its "
                                f"tasks: {', '.join(known)})")  # fmt: skip
        wanted: set[str] = set()
        stack = [m for n in names for m in self.members(n)]
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(self.needs(name))
        return [n for n in self.tasks if n in wanted]

    def needs(self, name: str) -> list[str]:
        """The tasks ``name`` needs done first (a grid's every task)."""
        return [m for u in self.tasks[name].upstream for m in self.members(u)]


def load_pipeline(where: str | Path | None = None, profile: str | None = None) -> Pipeline:
    """The pipeline of ``where`` (a ``pipeline.yaml``, or a folder: its ``pipeline.yaml`` if
    it has one, else the tasks found in it); default: the current folder. ``profile="smoke"``:
    as its smoke test builds it, each task's parameters with the ``smoke:`` values (the
    pipeline's, for the tasks whose parameters cell assigns them, then the task's own), its
    products under ``.nbcellar-smoke/``."""
    place = Path(where) if where is not None else Path.cwd()
    if place.is_dir() and (place / SPEC).is_file():
        found = _from_spec(place / SPEC, profile)
    elif place.is_dir():
        found = _discovered(place)
    elif place.is_file():
        found = _from_spec(place, profile)
    else:
        raise PipelineError(f"{place}: no such pipeline.yaml or folder")
    return _moved(found, profile) if profile else found


def _moved(pipeline: Pipeline, profile: str) -> Pipeline:
    """The pipeline with its products under ``.nbcellar-<profile>/`` (the same relative
    paths), so a profile's build never overwrites the real products."""
    from dataclasses import replace

    base = pipeline.root / f".nbcellar-{profile}"

    def moved(path: Path) -> Path:
        return base / path.relative_to(pipeline.root)

    tasks = {
        name: replace(task, output=moved(task.output),
                      files={k: moved(v) for k, v in task.files.items()})
        for name, task in pipeline.tasks.items()
    }  # fmt: skip
    return replace(pipeline, tasks=tasks)


def _from_spec(spec: Path, profile: str | None = None) -> Pipeline:
    import yaml

    root = spec.resolve().parent
    try:
        data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise PipelineError(f"{spec}{where}: not valid YAML; fix it and build again") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("tasks"), list):
        raise PipelineError(f"{spec}: a pipeline.yaml needs a 'tasks:' list (each task a "
                            "mapping with a 'source')")  # fmt: skip
    strangers = sorted(set(map(str, data)) - _PIPELINE_FIELDS)
    if strangers:
        raise PipelineError(f"{spec}: unknown field {strangers[0]!r} (a pipeline.yaml has: "
                            f"{', '.join(sorted(_PIPELINE_FIELDS))})")  # fmt: skip
    smoke = data.get(SMOKE) or {}
    if not isinstance(smoke, Mapping):
        raise PipelineError(f"{spec}: 'smoke' is a mapping of parameter names to the values "
                            "smoke tests run with")  # fmt: skip
    tasks: list[Task] = []
    for position, item in enumerate(data["tasks"], start=1):
        where = f"{spec}, task {position}"
        if not isinstance(item, Mapping) or "source" not in item:
            raise PipelineError(f"{where}: each task is a mapping with a 'source' (a notebook "
                                "or percent script)")  # fmt: skip
        strangers = sorted(set(map(str, item)) - _TASK_FIELDS)
        if strangers:
            raise PipelineError(f"{where}: unknown field {strangers[0]!r} (a task has: "
                                f"{', '.join(sorted(_TASK_FIELDS))})")  # fmt: skip
        source = _source(root, str(item["source"]), where)
        name = str(item.get("name") or source.stem)
        params = item.get("params") or {}
        if not isinstance(params, Mapping):
            raise PipelineError(f"{where}: 'params' is a mapping of names to values")
        own_smoke = item.get(SMOKE) or {}
        if not isinstance(own_smoke, Mapping):
            raise PipelineError(f"{where}: 'smoke' is a mapping of names to values")
        if profile == SMOKE and (smoke or own_smoke):
            params = {**params, **_assigned_of(source, smoke), **own_smoke}
        declared = item.get("upstream")
        upstream = _names(declared, where) if declared is not None else _upstream(root, source)
        if item.get("grid") is None:
            output, files = _products(root, name, item.get("product"), where)
            tasks.append(Task(name, source, upstream, dict(params), output, files))
            continue
        for member, values in _grid(name, params, item["grid"], where):
            output, files = _products(root, name, item.get("product"), where, values, member)
            tasks.append(Task(member, source, upstream, values, output, files, name))
    return _checked(root, tasks, spec)


def _grid(
    name: str, params: Mapping[str, Any], grid: Any, where: str
) -> list[tuple[str, dict[str, Any]]]:
    """The tasks a ``grid`` expands into: ``name[model=rf,n=10]`` and its parameters (the
    task's ``params`` crossed in), in the grid's order."""
    from nbcellar.runs.params import ParameterError, expand, grid_blocks

    try:
        blocks = grid_blocks(grid, "grid")
        names = list(dict.fromkeys(k for block in blocks for k in block))
        # (A smoke value of a grid's parameter replaces that part of the grid.)
        blocks = [{k: v for k, v in b.items() if k not in params} for b in blocks]
        left = [b for b in blocks if b] or None
        sets = expand((), None, MAX_GRID, params=params, grid=left)
    except ParameterError as exc:
        raise PipelineError(f"{where}: grid: {exc}") from None
    found = []
    for values in sets:
        label = ",".join(f"{k}={values[k]}" for k in names if k in values)
        found.append((f"{name}[{label}]", dict(values)))
    return found


def _discovered(root: Path) -> Pipeline:
    root = root.resolve()
    found: list[Task] = []
    for folder in (root, root / "tasks"):
        if not folder.is_dir():
            continue
        for source in sorted(folder.iterdir()):
            if source.suffix not in SOURCES or source.name.endswith(".out.ipynb"):
                continue
            if not _may_be_task(source):
                continue  # (a module beside the tasks, or a source never naming upstream)
            upstream = _upstream(root, source, required=False)
            if upstream is None:
                continue
            output, files = _products(root, source.stem, None, str(source))
            found.append(Task(source.stem, source, upstream, {}, output, files))
    if not found:
        raise PipelineError(f"{root}: no pipeline.yaml, and no notebook or percent script there "
                            "(or in tasks/) whose parameters cell assigns 'upstream'; declare "
                            "the tasks in pipeline.yaml, or add upstream = None to the first "
                            "task's parameters cell")  # fmt: skip
    return _checked(root, found, None)


def _source(root: Path, text: str, where: str) -> Path:
    path = (root / text).resolve()
    if path.suffix not in SOURCES:
        raise PipelineError(f"{where}: source {text!r} is not a notebook (.ipynb) or a percent "
                            "script (.py)")  # fmt: skip
    if not path.is_file():
        raise PipelineError(f"{where}: source {text} does not exist (relative to {root})")
    return path


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PipelineError(f"{where}: 'upstream' is a list of task names")


def _assigned_of(source: Path, values: Mapping[str, Any]) -> dict[str, Any]:
    """Of ``values``, those the source's parameters cell assigns."""
    from nbcellar.notebook import read_notebook
    from nbcellar.runs.params import declared

    if not values:
        return {}
    names = set(declared(read_notebook(source)))
    return {k: v for k, v in values.items() if k in names}


def _may_be_task(source: Path) -> bool:
    """Whether a source may declare ``upstream``: a percent script or a notebook whose text
    names it (the others are not read as notebooks, which validating takes milliseconds
    each: a folder of 50 notebooks tested alone is collected at once)."""
    try:
        text = source.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "upstream" in text and (source.suffix == ".ipynb" or "# %%" in text)


def _upstream(root: Path, source: Path, required: bool = True) -> Any:
    """:func:`declared_upstream`, read once per version of the source (see source_facts)."""
    from nbcellar.pipeline.manifests import source_facts

    def read(path: Path) -> Any:
        found = declared_upstream(path, required=False)
        return None if found is None else list(found)

    found = source_facts(root, source, read)
    if found is None:
        return () if required else None
    return tuple(found)


def declared_upstream(source: Path, required: bool = True) -> Any:
    """The ``upstream`` its parameters cell assigns (() when it assigns none or None; None
    when not ``required`` and the cell does not assign it, or there is no such cell)."""
    from nbcellar.notebook import read_notebook
    from nbcellar.runs.params import parameters_cell

    try:
        nb = read_notebook(source)
    except NbcellarError as exc:
        raise PipelineError(f"{source}: cannot be read as a task ({exc})") from None
    index = parameters_cell(nb)
    value: Any = ...
    if index is not None:
        text = nb.cells[index].source
        try:
            tree = ast.parse(text)
        except SyntaxError as exc:
            if re.search(r"\bupstream\s*=", text):  # (a task whose declaration is broken)
                raise PipelineError(f"{source}: its parameters cell is not valid Python (line "
                                    f"{exc.lineno}: {exc.msg}); fix it and build "
                                    "again") from None  # fmt: skip
            tree = ast.Module(body=[], type_ignores=[])
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "upstream" for t in node.targets
            ):
                try:
                    value = ast.literal_eval(node.value)
                except ValueError:
                    raise PipelineError(f"{source}: 'upstream' in its parameters cell is not a "
                                        "list of task names written out") from None  # fmt: skip
    if value is ...:
        return None if not required else ()
    if value is None:
        return ()
    return _names(value, str(source))


def _products(
    root: Path,
    name: str,
    declared: Any,
    where: str,
    values: Mapping[str, Any] | None = None,
    member: str | None = None,
) -> tuple[Path, dict[str, Path]]:
    """A task's executed notebook and other products; for a task of a grid (``values``, its
    parameters), each path with its ``[[name]]`` placeholders filled (ploomber's way), or
    else the task's parameters added to its file name."""
    default = root / "products" / f"{name}.ipynb"
    if values is not None:
        default = root / "products" / name / f"{_slug(member or name, name)}.ipynb"

    def path(text: str) -> Path:
        if values is None:
            return _product_path(root, text, where)
        filled = text
        for key, value in values.items():
            filled = filled.replace(f"[[{key}]]", str(value))
        if filled == text:
            stem, dot, suffix = text.rpartition(".")
            filled = f"{stem}-{_slug(member or name, name)}.{suffix}" if dot else f"{text}-"
        return _product_path(root, filled, where)

    if declared is None:
        return default, {}
    if isinstance(declared, str):
        return path(declared), {}
    if isinstance(declared, Mapping) and all(isinstance(v, str) for v in declared.values()):
        files = {str(k): path(v) for k, v in declared.items()}
        output = files.pop("nb", default)
        return output, files
    raise PipelineError(f"{where}: 'product' is a path, or a mapping of names to paths (with "
                        "'nb' for the executed notebook)")  # fmt: skip


def _slug(member: str, name: str) -> str:
    """``fit[model=rf,n=10]`` -> ``model=rf,n=10``, safe in a file name."""
    text = member[len(name) + 1 : -1] if member.startswith(name + "[") else member
    return "".join(ch if ch.isalnum() or ch in "=,._-" else "_" for ch in text)[:80]


def _product_path(root: Path, text: str, where: str) -> Path:
    path = (root / text).resolve()
    if root not in path.parents:
        raise PipelineError(f"{where}: product {text} is outside the pipeline's folder {root}")
    return path


def _checked(root: Path, tasks: list[Task], spec: Path | None) -> Pipeline:
    where = spec if spec is not None else root
    by_name: dict[str, Task] = {}
    for task in tasks:
        if task.name in by_name:
            first = by_name[task.name].source.name
            raise PipelineError(f"{where}: two tasks named {task.name!r} ({first} and "
                                f"{task.source.name}); give one a 'name'")  # fmt: skip
        by_name[task.name] = task
    owners: dict[Path, str] = {}
    for task in tasks:
        for product in task.products.values():
            if product in owners:
                raise PipelineError(f"{where}: tasks {owners[product]!r} and {task.name!r} both "
                                    f"produce {product.relative_to(root)}")  # fmt: skip
            owners[product] = task.name
    groups: dict[str, tuple[str, ...]] = {}
    for task in tasks:
        if task.group is not None:
            groups[task.group] = (*groups.get(task.group, ()), task.name)
    clash = sorted(set(groups) & set(by_name))
    if clash:
        raise PipelineError(f"{where}: {clash[0]!r} names a task and a grid of tasks; rename "
                            "one")  # fmt: skip
    known = [*groups, *(t.name for t in tasks if t.group is None)]
    for task in tasks:
        for name in task.upstream:
            if name not in by_name and name not in groups:
                raise PipelineError(f"{where}: task {task.name!r} needs {name!r}, which is not "
                                    f"a task (tasks: {', '.join(known)})")  # fmt: skip
    order = _ordered(by_name, groups, where)
    return Pipeline(root, {n: by_name[n] for n in order}, spec, groups)


def _ordered(
    tasks: Mapping[str, Task], groups: Mapping[str, tuple[str, ...]], where: Path
) -> list[str]:
    """A topological order (declaration order among independent tasks); a cycle is named."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise PipelineError(f"{where}: the tasks form a cycle: {' -> '.join(cycle)}; one "
                                "of them must not need the other")  # fmt: skip
        state[name] = 1
        for upstream in tasks[name].upstream:
            for member in groups.get(upstream, (upstream,)):
                visit(member, [*path, name])
        state[name] = 2
        order.append(name)

    for name in tasks:
        visit(name, [])
    return order
