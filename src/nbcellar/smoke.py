"""Smoke tests: every notebook and pipeline of a project run small, faster on every push.

``nbcellar.test(paths)`` (``nbcellar test``, and ``pytest --nbcellar`` through
:mod:`nbcellar.pytest_plugin`) finds under ``paths`` (default: here) the notebooks and percent
scripts, and the pipelines (a folder with ``pipeline.yaml``, or one whose notebooks declare
``upstream``), and runs each as its smoke test:

- a notebook with the values of its cells tagged ``smoke-parameters`` as parameters (those
  cells run only in smoke tests), its ``skip-execution`` cells (nbmake's tag) left out; a cell
  tagged ``raises-exception`` may raise. Its executed notebook goes to
  ``.nbcellar-smoke/<its path>.ipynb``.
- a pipeline's tasks with the ``smoke:`` values of ``pipeline.yaml`` (see
  :func:`nbcellar.pipeline.spec.load_pipeline`), its manifests and products apart from the
  real build's; each task is one test.

Every run uses the store (the project's ``.nbcellar/``, carried between CI runs by a cache
action), so a push runs only the cells whose inputs changed; ``changed=True`` does not even
run those whose last green run the store would serve whole (reported ``unchanged``). A test
fails at the cell that raised, with its source and traceback.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError

OUTPUTS = ".nbcellar-smoke"
_SKIPPED_FOLDERS = {"__pycache__", "node_modules", "site-packages", "products"}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class SmokeResult:
    """One smoke test: ``status`` is ``passed``, ``failed``, ``unchanged`` (``changed=True``:
    its last green run holds) or ``skipped`` (a pipeline task whose upstream failed)."""

    name: str
    path: Path
    status: str
    seconds: float = 0.0
    cells: Mapping[str, int] = field(default_factory=dict)
    failure: str = ""  # one line: the cell that raised, and what
    details: str = ""  # that cell's source and traceback


@dataclass(frozen=True)
class Found:
    notebooks: tuple[Path, ...]
    pipelines: tuple[Path, ...]  # their folders


Listener = Callable[[SmokeResult], None]


def find(paths: Sequence[str | Path] = ()) -> Found:
    """The notebooks and pipelines under ``paths`` (files or folders; default: here)."""
    from nbcellar.pipeline.spec import SPEC

    notebooks: list[Path] = []
    pipelines: list[Path] = []
    for given in paths or [Path.cwd()]:
        path = Path(given).resolve()
        if not path.exists():
            raise NbcellarError(f"{given}: no such file or folder to test")
        if path.is_file():
            if path.name == SPEC:
                pipelines.append(path.parent)
            elif is_notebook(path):
                notebooks.append(path)
            else:
                raise NbcellarError(f"{given}: not a notebook (.ipynb), a percent script (.py "
                                    "with # %% cells) or a pipeline.yaml")  # fmt: skip
            continue
        _walk(path, notebooks, pipelines)
    tasks_of = {p: _task_sources(p) for p in pipelines}
    inside = {s for sources in tasks_of.values() for s in sources}
    kept = [n for n in dict.fromkeys(notebooks) if n not in inside and not _of(n, pipelines)]
    return Found(tuple(kept), tuple(dict.fromkeys(pipelines)))


def _of(path: Path, pipelines: Sequence[Path]) -> bool:
    """Whether ``path`` is a task's source (or its jupytext pair) or a product of one of
    ``pipelines``: tested as that task, or not at all."""
    for root in pipelines:
        found = _pipeline_at(root)
        if root in path.parents and found is not None and _role(path, found, True) is not None:
            return True
    return False


@dataclass(frozen=True)
class InPipeline:
    """Where a notebook stands in the pipeline it belongs to: the source of ``task`` (or that
    source's jupytext pair), or a product (``task`` None); ``declared``: in a pipeline.yaml."""

    root: Path
    task: str | None
    declared: bool


def in_pipeline(path: Path) -> InPipeline | None:
    """The pipeline ``path`` belongs to as a task's source or a product, if any: the nearest
    ``pipeline.yaml`` above it, else the tasks found in its folder (or above ``tasks/``). A
    notebook of a pipeline folder that is neither is on its own (None)."""
    from nbcellar.pipeline.spec import SPEC

    path = path.resolve()
    for folder in path.parents:
        if (folder / SPEC).is_file():
            found = _pipeline_at(folder)
            if found is None:  # (a pipeline.yaml in error: its item says so)
                return InPipeline(folder, None, True)
            return _role(path, found, True)
    roots = [path.parent, path.parent.parent] if path.parent.name == "tasks" else [path.parent]
    for root in roots:
        found = _pipeline_at(root)
        role = _role(path, found, False) if found is not None else None
        if role is not None:
            return role
    return None


def _role(path: Path, pipeline: Any, declared: bool) -> InPipeline | None:
    for task in pipeline.tasks.values():
        source = task.source.resolve()
        if source == path or (source.parent == path.parent and source.stem == path.stem):
            return InPipeline(pipeline.root, task.group or task.name, declared)
        if path in {p.resolve() for p in task.products.values()}:
            return InPipeline(pipeline.root, None, declared)
    return None


_PIPELINES: dict[Path, Any] = {}


def _pipeline_at(folder: Path) -> Any:
    """The pipeline of ``folder`` (its yaml's, or the tasks found there), None if it has
    none or it cannot be read; read once per process."""
    from nbcellar.pipeline.spec import PipelineError, load_pipeline

    if folder not in _PIPELINES:
        try:
            _PIPELINES[folder] = load_pipeline(folder)
        except PipelineError:
            _PIPELINES[folder] = None
    return _PIPELINES[folder]


def skipped_folder(name: str) -> bool:
    """A folder that holds no notebook to test: hidden, a store, a grid's executed runs,
    products, caches."""
    return name.startswith(".") or name in _SKIPPED_FOLDERS or name.endswith(".runs")


def is_notebook(path: Path) -> bool:
    if path.suffix == ".ipynb":
        return not path.name.endswith(".out.ipynb")
    if path.suffix != ".py" or path.name.startswith("test_") or path.name == "conftest.py":
        return False
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return text.startswith("# %%") or "\n# %%" in text


def _walk(
    folder: Path, notebooks: list[Path], pipelines: list[Path], in_yaml: bool = False
) -> None:
    """Notebooks and pipelines under ``folder``; ``in_yaml``: under a pipeline.yaml's folder,
    where only that file says what the tasks are."""
    from nbcellar.pipeline.spec import SPEC

    declared = (folder / SPEC).is_file()
    if declared:
        pipelines.append(folder)
        if _pipeline_at(folder) is None:
            return  # (a pipeline.yaml in error: its item says so; its tasks are not known)
    found = sorted(p for p in folder.iterdir() if p.is_file() and is_notebook(p))
    # (beside a pipeline.yaml, its tasks are its own; the other notebooks are tested alone)
    tasks = [] if declared or in_yaml else [p for p in found if _declares_upstream(p)]
    if tasks:
        pipelines.append(folder)
    notebooks.extend(p for p in found if p not in tasks)
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if skipped_folder(sub.name):
            continue
        if (sub / "index.sqlite").is_file():  # (a store: the executed notebooks of its runs)
            continue
        if sub.name == "tasks" and tasks:
            continue  # (the pipeline's)
        _walk(sub, notebooks, pipelines, in_yaml or declared)


def _declares_upstream(path: Path) -> bool:
    from nbcellar.pipeline.spec import PipelineError, declared_upstream

    try:
        return declared_upstream(path, required=False) is not None
    except PipelineError:
        return False


def _task_sources(folder: Path) -> set[Path]:
    from nbcellar.pipeline.spec import PipelineError, load_pipeline

    try:
        return {t.source for t in load_pipeline(folder).tasks.values()}
    except PipelineError:
        return set()


def smoke_test(
    paths: Sequence[str | Path] = (),
    *,
    jobs: int = 1,
    changed: bool = False,
    store: str | Path | None = None,
    listener: Listener | None = None,
) -> list[SmokeResult]:
    """Run the smoke tests under ``paths`` (see the module): notebooks ``jobs`` at a time,
    then each pipeline, its independent tasks ``jobs`` at a time."""
    import concurrent.futures as futures

    from nbcellar.pipeline.spec import SPEC

    if jobs < 1:
        raise NbcellarError(f"jobs={jobs!r}: at least 1")
    found = find(paths)
    base = Path.cwd().resolve()
    said = listener or (lambda result: None)
    results: list[SmokeResult] = []
    first = [*found.notebooks, *(folder / SPEC for folder in found.pipelines)][:1]
    at_hand = kernels_at_hand(first[0] if first else None, store)
    with at_hand, futures.ThreadPoolExecutor(jobs, thread_name_prefix="nbcellar-smoke") as pool:
        pending = [pool.submit(smoke_notebook, n, base=base, changed=changed, store=store)
                   for n in found.notebooks]  # fmt: skip
        for future in pending:
            result = future.result()
            said(result)
            results.append(result)
        for folder in found.pipelines:
            results.extend(smoke_pipeline(folder, jobs=jobs, changed=changed, store=store,
                                         listener=said))  # fmt: skip
    return results


@contextlib.contextmanager
def kernels_at_hand(notebook: Path | None, store: str | Path | None) -> Iterator[None]:
    """While a session of smoke tests runs: the kernels of the runs that need one forked from
    a server started as the session starts, in the background (see
    nbcellar.runs.pool.kept_fork_server), rather than each started from scratch: on a push
    that edited one notebook, that notebook's kernel is ready in tens of milliseconds. For
    the runs whose store is that of ``notebook`` (the first test's): in a project, all."""
    from nbcellar.runs.execute import kernel_env
    from nbcellar.runs.pool import kept_fork_server
    from nbcellar.store.location import store_for_notebook

    root = None
    if notebook is not None:
        with contextlib.suppress(NbcellarError):  # (its test says why)
            root = store_for_notebook(store, notebook)
    if root is None:
        yield
        return
    with kept_fork_server(kernel_env(root)):
        yield


def output_of(path: Path, base: Path) -> Path:
    """Where a smoke test's executed notebook goes: ``.nbcellar-smoke/<path>.ipynb`` under
    ``base`` (beside the notebook when it is not under ``base``)."""
    try:
        relative = path.relative_to(base)
        root = base
    except ValueError:
        relative, root = Path(path.name), path.parent
    return root / OUTPUTS / relative.with_suffix(".ipynb")


def smoke_notebook(
    path: Path,
    *,
    base: Path | None = None,
    changed: bool = False,
    store: str | Path | None = None,
) -> SmokeResult:
    """One notebook's smoke test."""
    import nbcellar
    from nbcellar.runs.api import RunFailed

    path = Path(path).resolve()
    base = (base or Path.cwd()).resolve()
    name = str(path.relative_to(base)) if path.is_relative_to(base) else str(path)
    output = output_of(path, base)
    if changed and _served(path, store):
        return SmokeResult(name, path, "unchanged")
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        runset = nbcellar.run(path, smoke=True, output=output, store=store, jobs=1)
    except RunFailed as failed:
        failure, details = failing_cell(output)
        return SmokeResult(name, path, "failed", time.perf_counter() - start,
                           _cells(failed.runs), failure or str(failed), details)  # fmt: skip
    except NbcellarError as exc:  # (a notebook that cannot run: unreadable, no kernel)
        return SmokeResult(name, path, "failed", time.perf_counter() - start, {}, str(exc))
    return SmokeResult(name, path, "passed", time.perf_counter() - start, _cells(runset))


def _cells(runset: Any) -> dict[str, int]:
    records = getattr(runset, "records", None) or []
    return dict(records[0].cells) if records else {}


def _served(path: Path, store: str | Path | None) -> bool:
    """Whether the store would serve the notebook's smoke run whole (its last green run)."""
    from nbcellar.runs.launch import RunOptions, plan_runs
    from nbcellar.store.location import store_for_notebook

    root = store_for_notebook(store, path)
    if not root.exists():
        return False
    plan = plan_runs(path, [{}], RunOptions(store_root=root, smoke=True))
    return all(run.served for run in plan.runs)


def failing_cell(executed: Path) -> tuple[str, str]:
    """In an executed notebook: the first cell that raised, as a line, and its source and
    traceback (empty when none did)."""
    import nbformat

    try:
        nb = nbformat.read(executed, as_version=4)
    except (OSError, ValueError):
        return "", ""
    code = [c for c in nb.cells if c.cell_type == "code"]
    for number, cell in enumerate(code, start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            if "raises-exception" in cell.get("metadata", {}).get("tags", []):
                continue
            line = f"cell [{number}] raised {output.get('ename')}: {output.get('evalue')}"
            trace = _ANSI.sub("", "\n".join(output.get("traceback", [])))
            return line, f"cell [{number}]:\n{_indent(cell.source)}\n{trace}"
    return "", ""


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def smoke_pipeline(
    folder: Path,
    *,
    tasks: Iterable[str] = (),
    jobs: int = 1,
    changed: bool = False,
    store: str | Path | None = None,
    listener: Listener | None = None,
) -> list[SmokeResult]:
    """A pipeline's smoke test: its tasks (default: all) built with the smoke profile; a test
    per task."""
    from nbcellar.pipeline.build import build
    from nbcellar.pipeline.spec import SMOKE

    said = listener or (lambda result: None)
    folder = Path(folder).resolve()
    results: dict[str, SmokeResult] = {}

    def heard(outcome: Any) -> None:
        result = _task_result(folder, outcome, changed)
        if result is not None:
            results[outcome.task] = result
            said(result)

    done = build(tuple(tasks), pipeline=folder, jobs=jobs, store=store, profile=SMOKE,
                 listener=heard)  # fmt: skip
    return [results[n] for n in done.outcomes if n in results]


def _task_result(folder: Path, outcome: Any, changed: bool) -> SmokeResult | None:
    name = f"{folder.name}/{outcome.task}"
    if outcome.status in ("queued", "running"):
        return None
    if outcome.status == "up to date":
        return SmokeResult(name, folder, "unchanged" if changed else "passed", 0.0)
    if outcome.status == "ran":
        return SmokeResult(name, folder, "passed", outcome.seconds, dict(outcome.cells))
    if outcome.status == "skipped":
        return SmokeResult(name, folder, "skipped", 0.0, {}, outcome.why)
    failure, details = ("", "")
    if outcome.output is not None:
        failure, details = failing_cell(outcome.output)
    return SmokeResult(name, folder, "failed", outcome.seconds, dict(outcome.cells),
                       failure or outcome.why, details)  # fmt: skip
