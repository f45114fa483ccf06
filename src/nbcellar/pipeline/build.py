"""``nbcellar.build()`` / ``nbcellar build``: run a pipeline's tasks in order, only what changed.

Each task is an ``nbcellar run`` of its source, with its ``params``, in the pipeline's folder,
on the pipeline's store: inside a task only the cells whose inputs changed run, the others are
restored from the cache. A task is up to date, and not run at all, when the store would serve
its whole run without a kernel (the same normalised code and parameters, the modules it imports
and the files it reads as they were, what the upstream tasks it reads produced unchanged) and
its products are there: so a comment-only edit runs nothing, and an edit in a task runs its
changed cells and, downstream, only the cells that read what changed.

Tasks whose upstream tasks are done run side by side, ``jobs`` at a time, on ``executor``. A task
that fails stops the tasks that need it (``skipped``); the others go on. After each task its
manifest is written (see :mod:`nbcellar.pipeline.manifests`), which ``nbcellar.upstream`` reads.

Parameters a task's ``parameters`` cell assigns are filled as ploomber fills them: ``upstream``
becomes a mapping of each upstream task to its products' paths (``upstream["clean"]["data"]``),
``product`` the task's own (``product["nb"]``, ``product["data"]``).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError
from nbcellar.pipeline.spec import Pipeline, PipelineError, Task, load_pipeline


@dataclass
class TaskOutcome:
    """What a build did with one task: ``status`` is ``ran``, ``up to date``, ``failed``,
    ``skipped`` (an upstream task failed), ``cancelled``, or with ``explain``, ``would run``;
    ``why`` says why it ran (or would), or failed."""

    task: str
    status: str = "queued"
    why: str = ""
    run: str | None = None
    seconds: float = 0.0
    cells: Mapping[str, int] = field(default_factory=dict)
    output: Path | None = None  # its executed notebook, once it ran


@dataclass
class Build:
    pipeline: Pipeline
    outcomes: dict[str, TaskOutcome]

    @property
    def failed(self) -> list[str]:
        return [n for n, o in self.outcomes.items() if o.status in ("failed", "skipped")]

    def __getitem__(self, task: str) -> TaskOutcome:
        return self.outcomes[task]

    def ran(self) -> list[str]:
        return [n for n, o in self.outcomes.items() if o.status == "ran"]


Listener = Callable[[TaskOutcome], None]


def build(
    tasks: Sequence[str] = (),
    *,
    pipeline: str | Path | None = None,
    jobs: int = 1,
    executor: Any = None,
    force: bool = False,
    explain: bool = False,
    store: str | Path | None = None,
    listener: Listener | None = None,
    profile: str | None = None,
) -> Build:
    """Build ``tasks`` (default: every task) and the tasks they need; see the module.
    ``profile="smoke"``: the pipeline's smoke test (see load_pipeline and nbcellar.smoke), its
    manifests and products apart from the real ones."""
    import os

    from nbcellar.pipeline.manifests import PROFILE_VARIABLE
    from nbcellar.store.location import store_for_notebook

    if jobs < 1:
        raise NbcellarError(f"jobs={jobs!r}: at least 1")
    found = load_pipeline(pipeline, profile)
    names = found.closure(list(tasks)) if tasks else list(found.tasks)
    store_root = store_for_notebook(store, found.root / "pipeline.yaml")
    builder = _Builder(found, names, store_root, jobs, executor, force, listener)
    builder.smoke = profile == "smoke"
    before = os.environ.get(PROFILE_VARIABLE)
    os.environ[PROFILE_VARIABLE] = profile or ""  # (this process's, and its kernels')
    try:
        return builder.explain() if explain else builder.build()
    finally:
        builder.close()
        if before is None:
            os.environ.pop(PROFILE_VARIABLE, None)
        else:
            os.environ[PROFILE_VARIABLE] = before


def _dask_cluster(jobs: int) -> Any:
    """A Dask LocalCluster of ``jobs`` workers for a whole build (as ``--executor dask``
    starts one for a launch), which each task's run reaches by its address."""
    from nbcellar.runs.on_dask import DaskExecutor

    own = DaskExecutor(None)
    own.connect(jobs)
    return own


def task_params(pipeline: Pipeline, task: Task) -> dict[str, Any]:
    """The parameters a task runs with: its own, and ``upstream`` / ``product`` where its
    parameters cell assigns them (see the module)."""
    from nbcellar.notebook import read_notebook
    from nbcellar.runs.params import declared

    params = dict(task.params)
    assigned = set(declared(read_notebook(task.source)))
    if "upstream" in assigned:
        params["upstream"] = upstream_products(pipeline, task)
    if "product" in assigned:
        params["product"] = {k: str(p) for k, p in task.products.items()}
    return params


def upstream_products(pipeline: Pipeline, task: Task) -> dict[str, Any]:
    """For each upstream task, its products' paths by key (for a grid: by its tasks)."""

    def paths(name: str) -> dict[str, str]:
        return {k: str(p) for k, p in pipeline.tasks[name].products.items()}

    return {
        name: paths(name) if name in pipeline.tasks else
        {member: paths(member) for member in pipeline.members(name)}
        for name in task.upstream
    }  # fmt: skip


class _Builder:
    def __init__(
        self,
        pipeline: Pipeline,
        names: list[str],
        store_root: Path,
        jobs: int,
        executor: Any,
        force: bool,
        listener: Listener | None,
    ) -> None:
        self.pipeline = pipeline
        self.names = names
        self.store_root = store_root
        self.jobs = jobs
        self.executor = executor
        self.force = force
        self.listener = listener or (lambda outcome: None)
        self.outcomes = {n: TaskOutcome(n) for n in names}
        self._lock = threading.Lock()
        self._handles: dict[str, Any] = {}
        self._slow: set[str] = set()
        self.smoke = False  # its tasks run as their smoke tests (nbcellar.run(smoke=True))
        self._cluster: Any = None  # for --executor dask: one LocalCluster for every task
        self._forks = contextlib.ExitStack()  # the build's fork server, once a task runs
        self._forking = False

    def _executor(self) -> Any:
        """Where a task's run executes: for ``dask``, the build's own LocalCluster (started
        when a first task runs), by its address."""
        if self.executor != "dask":
            return self.executor
        with self._lock:
            if self._cluster is None:
                self._cluster = _dask_cluster(self.jobs)
            address = str(self._cluster.cluster.scheduler_address).removeprefix("tcp://")
        return f"dask://{address}"

    def _fork_kernels(self) -> None:
        """On the local executor, once a first task must run: a fork server kept for the rest
        of the build (see nbcellar.runs.pool.kept_fork_server), so that every later task's
        kernel is forked from it in tens of milliseconds rather than started from scratch.
        A build with nothing to run starts none."""
        from nbcellar.runs.execute import kernel_env
        from nbcellar.runs.pool import kept_fork_server

        if self.executor not in (None, "local"):
            return
        with self._lock:
            if self._forking:
                return
            self._forking = True
            if any(self.outcomes[n].status == "queued" for n in self.names):  # (more to come)
                self._forks.enter_context(kept_fork_server(kernel_env(self.store_root)))

    def close(self) -> None:
        self._forks.close()
        if self._cluster is not None:
            self._cluster.client.close()
            self._cluster.cluster.close()
            self._cluster = None

    # -- deciding ----------------------------------------------------------------------------

    def why(self, task: Task) -> str:
        """Why ``task`` must run now (empty: it is up to date)."""
        from nbcellar.cache.notebooks import check_run
        from nbcellar.pipeline.manifests import read_manifest
        from nbcellar.runs.execute import sources_of

        if self.force:
            return "--force"
        manifest = read_manifest(task.name, self.pipeline.root)
        if manifest is None:
            return "never built"
        if manifest.get("failed"):
            return "its last build failed"
        if self.store_root.exists() and self.unchanged(task, manifest):
            return ""
        nb = self._notebook(task)
        if not self.store_root.exists():
            return "the store is new"
        store = self._store()
        try:
            cells = sources_of(nb)
            found, why = check_run(store, cells, nb.kernel_name or "python3",
                                   store.root.parent, self.pipeline.root)  # fmt: skip
        finally:
            store.close()
        if found is None:
            return _sharper(why, manifest, nb, task)
        if not found.latest:  # (what it produced last is not that: rebuilt, from the store)
            return "its inputs are back to an earlier build's: restored from the store"
        for product in task.products.values():
            if not product.exists():
                return f"its product {product.relative_to(self.pipeline.root)} is missing"
        if manifest.get("unavailable") or list(manifest.get("cells") or []) != _code_hashes(nb):
            return "its code is back to an earlier build's: restored from the store"
        with self._lock:
            self._slow.add(task.name)  # (up to date, but its manifest's inputs are not)
        return ""

    def _refresh_inputs(self, task: Task) -> None:
        """After a task found up to date by reading it (its source edited, a comment say):
        its manifest's record of what it read brought up to date, so the next build sees it
        without reading it."""
        from nbcellar import __version__
        from nbcellar.cache.sources import file_hash
        from nbcellar.pipeline.manifests import read_manifest, write_manifest

        manifest = read_manifest(task.name, self.pipeline.root)
        if manifest is None:
            return
        nb = self._notebook(task)
        inputs: dict[str, Any] = {}
        _, unavailable = final_state(self.store_root, nb, self.pipeline.root, inputs)
        if unavailable:
            return
        inputs.update(source=file_hash(str(task.source)), spec=self._spec_of(task),
                      nbcellar=__version__)  # fmt: skip
        write_manifest(self.pipeline.root, task.name,
                       {**manifest, "inputs": inputs, "cells": _code_hashes(nb)})  # fmt: skip

    def _notebook(self, task: Task) -> Any:
        from nbcellar.notebook import read_notebook
        from nbcellar.runs.params import for_run

        return for_run(read_notebook(task.source), task_params(self.pipeline, task), self.smoke)

    def _store(self) -> Any:
        from nbcellar.store import open_store

        return open_store(self.store_root)

    def explain(self) -> Build:
        """Each task: would it run, and why; nothing runs. A task after one that would run
        may run too: it runs when what it reads changes."""
        would: set[str] = set()
        for name in self.names:
            task = self.pipeline.tasks[name]
            outcome = self.outcomes[name]
            why = self.why(task)
            changed_before = [u for u in self.pipeline.needs(name) if u in would]
            if why:
                outcome.status, outcome.why = "would run", why
                would.add(name)
            elif changed_before:
                outcome.status = "may run"
                outcome.why = (f"up to date now; its cells that read {', '.join(changed_before)} "
                               "run if what that produces changes")  # fmt: skip
                would.add(name)
            else:
                outcome.status, outcome.why = "up to date", ""
            self.listener(outcome)
        return Build(self.pipeline, self.outcomes)

    # -- running -----------------------------------------------------------------------------

    def build(self) -> Build:
        import concurrent.futures as futures

        pending = list(self.names)
        running: dict[futures.Future[None], str] = {}
        pool = futures.ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="nbcellar-task")
        try:
            while pending or running:
                for name in list(pending):
                    if len(running) >= self.jobs:
                        break
                    task = self.pipeline.tasks[name]
                    needs = self.pipeline.needs(name)
                    states = [self.outcomes[u].status for u in needs if u in self.outcomes]
                    if any(s in ("failed", "skipped", "cancelled") for s in states):
                        pending.remove(name)
                        bad = [u for u in needs
                               if self.outcomes.get(u, TaskOutcome(u, "ok")).status
                               in ("failed", "skipped", "cancelled")]  # fmt: skip
                        self._end(name, "skipped", f"task {bad[0]!r} did not build")
                        continue
                    if any(s not in ("ran", "up to date") for s in states):
                        continue
                    pending.remove(name)
                    running[pool.submit(self._one, task)] = name
                if not running:
                    continue
                done, _ = futures.wait(list(running), timeout=0.2,
                                       return_when=futures.FIRST_COMPLETED)  # fmt: skip
                for future in done:
                    name = running.pop(future)
                    error = future.exception()
                    if error is not None:
                        self._end(name, "failed", _one_line(error))
        except BaseException:  # (Ctrl-C: the runs under way are cancelled, nothing else starts)
            with self._lock:
                handles = list(self._handles.values())
            for handle in handles:
                handle.cancel()
            for name in [*pending, *running.values()]:
                if self.outcomes[name].status in ("queued", "running"):
                    self._end(name, "cancelled", "interrupted")
            raise
        finally:
            pool.shutdown(wait=True)
        return Build(self.pipeline, self.outcomes)

    def _end(self, name: str, status: str, why: str = "") -> None:
        outcome = self.outcomes[name]
        outcome.status = status
        if why or status != "up to date":
            outcome.why = why or outcome.why
        self.listener(outcome)

    def _one(self, task: Task) -> None:
        import nbcellar
        from nbcellar.runs.api import RunFailed

        why = self.why(task)
        outcome = self.outcomes[task.name]
        if not why:
            if task.name in self._slow:
                self._refresh_inputs(task)
            self._end(task.name, "up to date")
            if task.group is not None:
                self._write_group(task.group)
            return
        outcome.status, outcome.why, outcome.output = "running", why, task.output
        self.listener(outcome)
        self._fork_kernels()
        task.output.parent.mkdir(parents=True, exist_ok=True)
        for product in task.files.values():
            product.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        handle = nbcellar.run(task.source, task_params(self.pipeline, task), output=task.output,
                              store=self.store_root, cwd=self.pipeline.root, jobs=1,
                              executor=self._executor(), strict=True, wait=False,
                              smoke=self.smoke)  # fmt: skip
        with self._lock:
            self._handles[task.name] = handle
        try:
            runset = handle.wait()
        except RunFailed as failed:
            record = failed.runs.records[0] if failed.runs is not None else None
            if record is not None:
                outcome.run = record.id
            self._failed(task, outcome.run)
            self._end(task.name, "failed", _one_line(failed))
            return
        finally:
            with self._lock:
                self._handles.pop(task.name, None)
        record = runset.records[0]
        outcome.run, outcome.seconds = record.id, time.perf_counter() - start
        outcome.cells = dict(record.cells)
        if record.status != "ok":
            self._failed(task, record.id)
            self._end(task.name, "failed", record.error or record.status)
            return
        missing = [p for p in task.files.values() if not p.exists()]
        if missing:
            self._failed(task, record.id)
            self._end(
                task.name,
                "failed",
                f"it did not write its product {missing[0].relative_to(self.pipeline.root)}",
            )
            return
        self._write_manifest(task, record)
        self._end(task.name, "ran", why)
        if task.group is not None:
            self._write_group(task.group)

    def _failed(self, task: Task, run: str | None) -> None:
        """A task that failed leaves a manifest saying so: the next build runs it again (its
        executed notebook shows the failure), and no task reads what it made before."""
        from nbcellar.pipeline.manifests import write_manifest

        write_manifest(self.pipeline.root, task.name, {
            "task": task.name, "run": run, "failed": True, "state": {}, "logged": {},
            "products": {k: str(p) for k, p in task.products.items()}, "files": {},
            "version": _digest(["failed", run]), "store": str(self.store_root),
            "unavailable": "its last build failed; build it again", "cells": [], "inputs": {},
        })  # fmt: skip

    def _write_group(self, group: str) -> None:
        """The manifest of a grid of tasks, once each has one: its tasks, and a version made
        of theirs (what a cell reading ``upstream(group)`` is keyed on)."""
        from nbcellar.pipeline.manifests import read_manifest, write_manifest

        with self._lock:
            members = self.pipeline.members(group)
            found = [read_manifest(m, self.pipeline.root) for m in members]
            if any(m is None for m in found):
                return
            versions = [str(m.get("version")) for m in found if m is not None]
            write_manifest(self.pipeline.root, group,
                           {"task": group, "group": list(members),
                            "version": _digest(versions)})  # fmt: skip

    def _write_manifest(self, task: Task, record: Any) -> None:
        from nbcellar import __version__
        from nbcellar.cache.sources import file_hash
        from nbcellar.pipeline.manifests import write_manifest

        nb = self._notebook(task)
        inputs: dict[str, Any] = {}
        state, unavailable = final_state(self.store_root, nb, self.pipeline.root, inputs)
        unavailable = _raised_in(task.output) or unavailable
        if not unavailable:
            inputs.update(source=file_hash(str(task.source)), spec=self._spec_of(task),
                          nbcellar=__version__)  # fmt: skip
        products = {k: str(p) for k, p in task.products.items()}
        contents = {k: _file_hash(p) for k, p in task.files.items()}
        logged = _plain(dict(record.values))
        parts = {"state": {n: v["version"] for n, v in state.items()}, "logged": logged,
                 "files": contents}  # fmt: skip
        if unavailable:
            parts["run"] = record.id  # (its variables unknown: a new version every build)
        version = _digest(parts)
        write_manifest(self.pipeline.root, task.name, {
            "task": task.name, "run": record.id, "params": _plain(dict(task.params)),
            "state": state, "logged": logged, "products": products, "files": contents,
            "version": version, "store": str(self.store_root), "unavailable": unavailable,
            "cells": _code_hashes(nb), "inputs": inputs,
        })  # fmt: skip

    def _spec_of(self, task: Task) -> Any:
        """What the task's parameters follow from, besides its source (see task_params)."""
        return _plain({
            "params": dict(task.params),
            "upstream": upstream_products(self.pipeline, task),
            "products": {k: str(p) for k, p in task.products.items()},
        })  # fmt: skip

    def unchanged(self, task: Task, manifest: Mapping[str, Any]) -> bool:
        """Whether nothing the task's last build read has changed (its source, its spec, the
        modules, files and upstream tasks its cells read, their entries in the store, its
        products): up to date without reading the notebook. False when unsure."""
        from nbcellar import __version__
        from nbcellar.cache.entries import KIND, CacheEntry
        from nbcellar.cache.files import changed_file
        from nbcellar.cache.inputs import file_input_version
        from nbcellar.cache.sources import file_hash, module_version

        inputs = manifest.get("inputs") or {}
        if not inputs.get("keys") or inputs.get("nbcellar") != __version__:
            return False
        if inputs.get("source") != file_hash(str(task.source)):
            return False
        if inputs.get("spec") != self._spec_of(task):
            return False
        if any(not p.exists() for p in task.products.values()):
            return False
        root, project = self.pipeline.root, self.store_root.parent
        for module, version in (inputs.get("modules") or {}).items():
            if module_version(module, project, root) != version:
                return False
        for name, version in (inputs.get("files") or {}).items():
            if file_input_version(name, root) != version:
                return False
        store = self._store()
        try:
            for key in inputs["keys"]:
                row = store.get_record(KIND, key)
                if row is None:
                    return False
                entry = CacheEntry.from_bytes(key, row.snapshot_id, row.payload)
                if entry.replays or changed_file(entry.touched, entry.wrote):
                    return False
        finally:
            store.close()
        return True


def final_state(
    store_root: Path, nb: Any, cwd: Path, inputs: dict[str, Any] | None = None
) -> tuple[dict[str, dict[str, str]], str]:
    """The variables a fresh kernel ends ``nb`` with, from its remembered run: for each, the
    snapshot holding it and its content's version; and why there are none (empty if there
    are). ``inputs`` gets what the run read from outside (its cells' entries, the modules and
    files they read), for :meth:`_Builder.unchanged`."""
    from nbcellar.cache.entries import KIND, CacheEntry
    from nbcellar.cache.notebooks import check_run
    from nbcellar.runs.execute import sources_of
    from nbcellar.store import open_store

    store = open_store(store_root)
    try:
        found, why = check_run(store, sources_of(nb), nb.kernel_name or "python3",
                               store.root.parent, cwd, replayable=True)  # fmt: skip
        if found is None:
            return {}, f"its run is not kept whole in the store: {why}"
        state: dict[str, dict[str, str]] = {}
        keys: list[str] = []
        modules: dict[str, str] = {}
        files: dict[str, str] = {}
        for done in found.cells:
            if done.key is None:
                continue
            row = store.get_record(KIND, done.key)
            if row is None:
                return {}, "a cell's stored result is gone"
            entry = CacheEntry.from_bytes(done.key, row.snapshot_id, row.payload)
            keys.append(done.key)
            modules.update(entry.inputs.modules)
            files.update(entry.inputs.files)
            for name in entry.stored_names:
                if name.startswith("_") or entry.snapshot_id is None:
                    continue
                version = entry.versions.get(name)
                if version is not None and version.kind == "imported":
                    continue  # (a module, or what a cell imported: not what the task made)
                text = (
                    json.dumps([version.kind, version.token, list(version.refers)])
                    if version is not None and version.token
                    else f"{done.key}:{name}"
                )
                state[name] = {"snapshot": str(entry.snapshot_id), "version": _digest(text)}
            for name in (*entry.deleted, *entry.unserializable):
                state.pop(name, None)
        if inputs is not None:
            inputs.update(keys=keys, modules=modules, files=files)
        return state, ""
    finally:
        store.close()


def _sharper(why: str, manifest: Mapping[str, Any], nb: Any, task: Task) -> str:
    """A reason about the code made exact with the last build's cells and parameters."""
    if not why.startswith("its code"):
        return why
    if _plain(dict(task.params)) != manifest.get("params"):
        return "its parameters changed"
    before = list(manifest.get("cells") or [])
    now = _code_hashes(nb)
    for number, (old, new) in enumerate(zip(before, now, strict=False), start=1):
        if old != new:
            return f"cell [{number}] changed"
    if len(now) != len(before):
        return f"cells were {'added' if len(now) > len(before) else 'removed'}"
    return why


def _raised_in(executed: Path) -> str:
    """Why a task's variables are not kept when a cell of its run raised as its
    ``raises-exception`` tag allows (empty if none did)."""
    import nbformat

    try:
        node = nbformat.read(executed, as_version=4)
    except (OSError, ValueError):
        return ""
    code = [c for c in node.cells if c.cell_type == "code"]
    for number, cell in enumerate(code, start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return (f"cell [{number}] raised {output.get('ename')}, as its "
                        "raises-exception tag allows, and what a cell does before raising is "
                        "not kept; read the task's product files, or catch the error in that "
                        "cell")  # fmt: skip
    return ""


def _code_hashes(nb: Any) -> list[str]:
    from nbcellar.analysis import analyze_cell

    return [str(analyze_cell(c.source).code_hash) for c in nb.code_cells if c.source.strip()]


def _file_hash(path: Path) -> str:
    from nbcellar.cache.sources import file_hash

    return file_hash(str(path)) if path.is_file() else "absent"


def _digest(value: Any) -> str:
    import xxhash

    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=repr)
    return str(xxhash.xxh3_128_hexdigest(text.encode("utf-8")))


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=repr))


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


__all__ = ["Build", "PipelineError", "TaskOutcome", "build", "final_state", "task_params"]
