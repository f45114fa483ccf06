"""``pytest --nbcellar``: notebooks, percent scripts and pipeline tasks as test items.

Registered as a pytest plugin (entry point ``pytest11``), it does nothing unless ``--nbcellar``
is given. Then every notebook and percent script pytest meets (``pytest --nbcellar notebooks/``)
is one item, run as its smoke test (see :mod:`nbcellar.smoke`); a ``pipeline.yaml`` is one item
per task, in the pipeline's order. ``--nbcellar-changed`` skips the notebooks the store would
serve whole (their last green run holds). A failing item shows the cell that raised, its source
and its traceback. Items are independent of each other (a pipeline's tasks build what they need
first), so ``pytest-xdist``'s ``-n`` runs them side by side; with ``--dist loadgroup`` the
tasks of one pipeline stay on one worker (two workers would build a shared upstream task at
once).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nbcellar", "notebooks as smoke tests (nbcellar)")
    group.addoption("--nbcellar", action="store_true",
                    help="collect notebooks, percent scripts and pipeline.yaml tasks as tests, "
                    "run with their smoke parameters and the cell cache")  # fmt: skip
    group.addoption(
        "--nbcellar-changed",
        action="store_true",
        help="skip the notebooks whose last green run the store serves whole",
    )
    group.addoption(
        "--nbcellar-store",
        default=None,
        metavar="PATH",
        help="the store (default: $NBCELLAR_STORE, else the nearest .nbcellar/)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """With --nbcellar: nbformat's schema checks without compiling rfc3987_syntax's grammars
    (2-3 s, for a format notebooks do not use), as the nbcellar command does."""
    # (pytest-xdist's mark, for --dist loadgroup: a pipeline's tasks on one worker, one
    # build at a time; registered here too, for runs without xdist.)
    config.addinivalue_line("markers", "xdist_group(name): items that run on one xdist worker")
    if config.getoption("nbcellar"):
        from nbcellar.notebook.formats import skip_iri_grammars

        skip_iri_grammars()


def pytest_collection_finish(session: pytest.Session) -> None:
    """With --nbcellar and tests of ours to run: kernels at hand for the session (see
    nbcellar.smoke.kernels_at_hand), for the store of the first."""
    config = session.config
    if not config.getoption("nbcellar") or config.getoption("collectonly"):
        return
    first = next((item for item in session.items if isinstance(item, _Item)), None)
    if first is None:
        return
    import contextlib

    from nbcellar.smoke import kernels_at_hand

    notebook = first.root / "pipeline.yaml" if isinstance(first, TaskItem) else first.path
    stack = contextlib.ExitStack()
    stack.enter_context(kernels_at_hand(notebook, first._nbcellar_store()))
    config.stash[_SESSION] = stack


def pytest_sessionfinish(session: pytest.Session) -> None:
    stack = session.config.stash.get(_SESSION, None)
    if stack is not None:
        stack.close()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With --nbcellar: not inside a store (the executed notebooks of its runs)."""
    if config.getoption("nbcellar") and (collection_path / "index.sqlite").is_file():
        return True
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A pipeline.yaml: an item per task. A notebook or percent script: an item, unless it is
    a task of a pipeline.yaml (that file's item), the source of a task found without one (an
    item building that task), or a product or executed notebook (none)."""
    if not parent.config.getoption("nbcellar"):
        return None
    from nbcellar.smoke import in_pipeline, is_notebook, skipped_folder

    if file_path.name == "pipeline.yaml":
        return PipelineFile.from_parent(parent, path=file_path)
    try:
        inside = file_path.parent.relative_to(parent.config.rootpath).parts
    except ValueError:
        inside = ()
    if any(skipped_folder(part) for part in inside) or not is_notebook(file_path):
        return None  # (executed notebooks: ours, a grid's, a pipeline's products)
    role = in_pipeline(file_path)
    if role is None:
        return NotebookFile.from_parent(parent, path=file_path)
    if role.declared or role.task is None:
        return None
    return TaskFile.from_parent(parent, path=file_path, root=role.root, task=role.task)


class NotebookFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield NotebookItem.from_parent(self, name=self.path.name)


class PipelineFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from nbcellar.pipeline.spec import SMOKE, PipelineError, load_pipeline

        try:
            found = load_pipeline(self.path, SMOKE)
        except PipelineError as exc:
            raise self.CollectError(str(exc)) from None
        for name in found.tasks:
            item = TaskItem.from_parent(self, name=name, root=self.path.parent)
            item.add_marker(pytest.mark.xdist_group(str(self.path)))
            yield item


class TaskFile(pytest.File):
    """A task of a pipeline found without a pipeline.yaml (its parameters cell declares
    ``upstream``): one item, building it (and what it needs) as its smoke test."""

    def __init__(self, *, root: Path, task: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = root
        self.task = task

    def collect(self) -> Iterator[pytest.Item]:
        item = TaskItem.from_parent(self, name=self.task, root=self.root)
        item.add_marker(pytest.mark.xdist_group(str(self.root)))
        yield item


class Failed(Exception):
    """A smoke test that failed (its SmokeResult)."""

    def __init__(self, result: Any) -> None:
        super().__init__(result.failure)
        self.result = result


class _Item(pytest.Item):
    def _nbcellar_store(self) -> Any:
        return self.config.getoption("nbcellar_store")

    def _check(self, result: Any) -> None:
        if result.status == "failed":
            raise Failed(result)
        if result.status == "skipped":
            pytest.skip(result.failure or "an upstream task failed")
        if result.status == "unchanged":
            pytest.skip("unchanged since its last green run (--nbcellar-changed)")

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, Failed):
            result = excinfo.value.result
            return f"{result.failure}\n\n{result.details}".rstrip()
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"nbcellar: {self.name}"


class NotebookItem(_Item):
    def runtest(self) -> None:
        from nbcellar.smoke import smoke_notebook

        self._check(smoke_notebook(self.path, base=self.config.rootpath,
                                   changed=self.config.getoption("nbcellar_changed"),
                                   store=self._nbcellar_store()))  # fmt: skip


class TaskItem(_Item):
    def __init__(self, *, root: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = root  # the pipeline's folder

    def runtest(self) -> None:
        from nbcellar.smoke import smoke_pipeline

        # (A task failed earlier in this session is not built again for each task needing it.)
        failed_here = self.config.stash.setdefault(_FAILED, {}).setdefault(self.root, set())
        blocked = sorted(self._needs() & failed_here)
        if blocked:
            pytest.skip(f"an upstream task failed: {blocked[0]}")
        results = smoke_pipeline(self.root, tasks=[self.name], store=self._nbcellar_store(),
                                 changed=self.config.getoption("nbcellar_changed"))  # fmt: skip
        failed_here.update(r.name.rpartition("/")[2] for r in results if r.status == "failed")
        mine = [r for r in results if r.name.endswith(f"/{self.name}")]
        failed = [r for r in results if r.status == "failed" and r not in mine]
        if failed:
            pytest.skip(f"an upstream task failed: {failed[0].name}")
        self._check(mine[0])

    def _needs(self) -> set[str]:
        """The tasks this one needs, directly or through others."""
        from nbcellar.pipeline.spec import SMOKE, PipelineError, load_pipeline

        try:
            pipeline = load_pipeline(self.root, SMOKE)
        except PipelineError:
            return set()  # (the build says why)
        needed: set[str] = set()
        todo = [self.name]
        while todo:
            task = pipeline.tasks.get(todo.pop())
            for upstream in task.upstream if task is not None else ():
                for member in pipeline.members(upstream):
                    if member not in needed:
                        needed.add(member)
                        todo.append(member)
        return needed


_FAILED = pytest.StashKey[dict[Path, set[str]]]()
"""Per pipeline folder, the tasks that failed in this pytest session."""
_SESSION = pytest.StashKey[Any]()
"""What the session keeps open while its tests run (its kernels' fork server)."""
