"""Execute a notebook top to bottom in a real Jupyter kernel (nbclient), cell by cell.

With caching on, the kernel loads the nbcellar extension first (``%load_ext nbcellar``, using
the same store as the caller) and is told each cell's tags before the cell runs; each execute
reply then says whether the cell was restored or ran. Callers follow progress through two
callbacks and get back the executed notebook plus one :class:`CellRun` per code cell. A cell
that raises stops the run (unless ``allow_errors``, or the cell is tagged ``raises-exception``
as nbclient reads it); the partial notebook is still returned.
"""

from __future__ import annotations

import ast
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from nbcellar.errors import NbcellarError
from nbcellar.kernel import protocol
from nbcellar.notebook.model import Notebook, from_nbformat, to_nbformat

CellStatus = Literal["ran", "restored", "error", "not run"]


class KernelNotFound(NbcellarError):
    """The kernel a notebook asks for is not installed."""


@dataclass(frozen=True)
class CellRun:
    """What happened to one code cell during a run."""

    index: int
    cell_id: str | None
    status: CellStatus
    seconds: float
    error: str | None = None
    saved_seconds: float = 0.0
    key: str | None = None  # the cell's cache key, when the cache keyed it
    # Why a cell that ran was not stored (it always runs: tagged nocache, a %cd, a logging
    # handler writing to a file...), as the kernel's cache said.
    reason: str = ""


@dataclass(frozen=True)
class ExecutionResult:
    notebook: Notebook
    cells: tuple[CellRun, ...]
    kernel_name: str
    seconds: float
    cached: bool
    kernel_started: bool = True  # False: every cell was restored from a remembered run
    # The kernel's namespace at the end (save_final): see nbcellar.kernel.inherit.base_snapshot.
    final_state: dict[str, Any] | None = None
    # Why values of cells that ran could not be stored (a full disk): the run is fine, the
    # cache misses them next time.
    store_failures: tuple[str, ...] = ()
    # The distributions the cells imported (see nbcellar.kernel.requirements); None: not
    # known (no kernel, or no cache in it).
    requirements: dict[str, str] | None = None

    @property
    def failed(self) -> CellRun | None:
        return next((c for c in self.cells if c.status == "error"), None)

    @property
    def saved_seconds(self) -> float:
        return sum(c.saved_seconds for c in self.cells)


def _mark_unstored(node: Any, cells: tuple[CellRun, ...], failures: tuple[str, ...]) -> None:
    """Say in each cell's metadata that what it made could not be stored, and why."""
    from nbcellar.cache.recording import CELL_SNAPSHOT_LABEL

    why: dict[str, str] = {}
    for failure in failures:
        label, _, reason = failure.partition(": ")
        if label.startswith(CELL_SNAPSHOT_LABEL):
            why[label[len(CELL_SNAPSHOT_LABEL) :]] = reason
    code = [cell for cell in node.cells if cell.cell_type == "code"]
    for cell, run in zip(code, cells, strict=True):
        if run.key is not None and run.key in why:
            meta = cell.setdefault("metadata", {}).setdefault("nbcellar", {})
            meta["stored"] = False
            meta["not_stored"] = why[run.key]


def _requirements(kernel_client: Any) -> dict[str, str] | None:
    """What the kernel's cells imported (see CellCacheExtension.requirements)."""
    from jupyter_core.utils import run_sync

    reply = run_sync(kernel_client.execute_interactive)(
        "", silent=True, store_history=False, timeout=60,
        user_expressions={"requirements": protocol.requirements()},
    )  # fmt: skip
    found = protocol.expression_value(reply["content"], "requirements")
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None


def _write_failures(kernel_client: Any) -> tuple[str, ...]:
    """What the kernel's cache could not store (see CellCacheExtension.write_failures)."""
    from jupyter_core.utils import run_sync

    reply = run_sync(kernel_client.execute_interactive)(
        "", silent=True, store_history=False, timeout=60,
        user_expressions={"failures": protocol.write_failures()},
    )  # fmt: skip
    found = protocol.expression_value(reply["content"], "failures")
    return tuple(str(f) for f in found) if isinstance(found, list) else ()


def _error_line(outputs: list[Any]) -> str | None:
    for output in outputs:
        if output.get("output_type") == "error":
            value = str(output.get("evalue", "")).strip().splitlines()
            return f"{output.get('ename', 'Error')}: {value[0] if value else ''}".rstrip(": ")
    return None


def local_kernel_config(socket_dir: str) -> Any:
    """Kernels on this machine talk over Unix sockets in ``socket_dir``, not open TCP ports."""
    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = os.path.join(socket_dir, "kernel")
    return config


def artifact_folder_of(store_root: Path | None, run_id: str | None, cwd: Path) -> Path:
    """Where the cells of a run write its files (see nbcellar.artifacts)."""
    if store_root is not None and run_id is not None:
        return Path(store_root) / "runs" / run_id / "artifacts"
    return cwd / "artifacts"


def kernel_env(store_root: Path | None) -> dict[str, str]:
    """The environment of a run's kernel: ours, plus the store to cache in."""
    env = dict(os.environ)
    if store_root is not None:
        env[protocol.STORE_VARIABLE] = str(store_root)
    return env


def check_kernel(name: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise KernelNotFound(
            f"kernel {name!r} is not installed (see 'jupyter kernelspec list'); "
            "install it or pass --kernel python3"
        ) from None


class _Runner:
    """Drives one NotebookClient through the cells, collecting a CellRun for each."""

    def __init__(
        self,
        nb: Notebook,
        on_cell_start: Callable[[int], None] | None,
        on_cell_done: Callable[[CellRun], None] | None,
    ) -> None:
        self.nb = nb
        self.code_index = {
            i: n for n, i in enumerate(i for i, c in enumerate(nb.cells) if c.is_code)
        }
        self.runs: dict[int, CellRun] = {}
        self.started: dict[int, float] = {}
        self.on_cell_start = on_cell_start
        self.on_cell_done = on_cell_done

    def cell_start(self, cell: Any, cell_index: int, **_: Any) -> None:
        self.started[cell_index] = time.perf_counter()
        if self.on_cell_start is not None and cell_index in self.code_index:
            self.on_cell_start(self.code_index[cell_index])

    def cell_executed(self, cell: Any, cell_index: int, execute_reply: Any, **_: Any) -> None:
        if cell_index not in self.code_index:
            return
        seconds = time.perf_counter() - self.started.get(cell_index, time.perf_counter())
        ok = execute_reply is not None and execute_reply["content"].get("status") == "ok"
        cached = protocol.reply_outcome(execute_reply)
        status: CellStatus = "ran" if ok or self.allows_error(cell, execute_reply) else "error"
        if ok and cached.get("status") == "restored":
            status = "restored"
        run = CellRun(
            index=self.code_index[cell_index],
            cell_id=cell.get("id"),
            status=status,
            seconds=seconds,
            error=None if ok else _error_line(cell.get("outputs", [])) or "raised",
            saved_seconds=float(cached.get("saved_seconds", 0.0)) if ok else 0.0,
            key=cached.get("key") if ok else None,
            reason=str(cached.get("reason", "")) if ok else "",
        )
        if cached:
            cell.setdefault("metadata", {})["nbcellar"] = {
                "status": status,
                "seconds": round(seconds, 3),
                "saved_seconds": round(run.saved_seconds, 3),
                **({"reason": run.reason} if run.reason else {}),
            }
            if cached.get("not_stored"):  # (the cache failed around it: a full disk)
                cell["metadata"]["nbcellar"].update(
                    stored=False, not_stored=str(cached["not_stored"])
                )
        self.runs[cell_index] = run
        if self.on_cell_done is not None:
            self.on_cell_done(run)

    @staticmethod
    def allows_error(cell: Any, execute_reply: Any) -> bool:
        """Whether the cell's error is one the notebook expects, as nbclient reads it: the cell
        is tagged ``raises-exception`` (it ran, with its error shown, and the run goes on)."""
        return execute_reply is not None and "raises-exception" in cell.get("metadata", {}).get(
            "tags", []
        )

    def fail_running(self, why: str) -> None:
        """Mark the cell that was running when the kernel stopped (timeout, crash) as failed."""
        for cell_index in set(self.started) - set(self.runs):
            if cell_index in self.code_index:
                elapsed = time.perf_counter() - self.started[cell_index]
                self.runs[cell_index] = CellRun(
                    self.code_index[cell_index], self.nb.cells[cell_index].id, "error", elapsed, why
                )

    def cells(self) -> tuple[CellRun, ...]:
        return tuple(
            self.runs.get(i)
            or CellRun(index=n, cell_id=self.nb.cells[i].id, status="not run", seconds=0.0)
            for i, n in self.code_index.items()
        )


def execute_notebook(
    nb: Notebook,
    *,
    cwd: str | Path,
    kernel_name: str | None = None,
    timeout: float | None = None,
    allow_errors: bool = False,
    store_root: Path | None = None,
    on_cell_start: Callable[[int], None] | None = None,
    on_cell_done: Callable[[CellRun], None] | None = None,
    without_kernel: bool = True,
    kernel: Callable[[], Any] | None = None,
    run_id: str | None = None,
    save_final: bool = False,
    resume_from: str | None = None,
) -> ExecutionResult:
    """Run every code cell of ``nb`` in a fresh kernel started in ``cwd``.

    With ``store_root`` the kernel caches its cells in that store (``%load_ext nbcellar``); when
    the store shows that a kernel would restore every cell, no kernel is started at all (unless
    ``without_kernel`` is False) and the executed notebook is the one that run produced.
    ``kernel`` gives an already started kernel's manager (see :class:`KernelPool`), called only
    if a kernel is needed; the run shuts that kernel down when it ends. ``save_final`` (with
    a store, never served without a kernel) saves the kernel's final namespace: the result's
    ``final_snapshot``. ``resume_from``: a run whose checkpoints this one's resumable loops
    continue from (see nbcellar.checkpointing).
    """
    from jupyter_core.utils import run_sync
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    from nbcellar.runs.kernels import KernelStartError, notebook_client, start_failure, stop_now

    name = kernel_name or nb.kernel_name or "python3"
    check_kernel(name)
    begin = time.perf_counter()
    if store_root is not None and without_kernel and not save_final:
        restored = _restore_remembered(
            nb, name, store_root, Path(cwd), on_cell_start, on_cell_done, run_id
        )
        if restored is not None:
            return replace(restored, seconds=time.perf_counter() - begin)
    node = to_nbformat(nb)
    runner = _Runner(nb, on_cell_start, on_cell_done)
    env = kernel_env(store_root)
    completed = False
    store_failures: tuple[str, ...] = ()
    requirements: dict[str, str] | None = None
    final: dict[str, Any] | None = None
    limit = None if timeout is None else max(1, math.ceil(timeout))  # (nbclient: whole seconds)
    from nbcellar.owners import owned_temporary_prefix, remove_orphans

    remove_orphans("kernel")  # (what killed runs left behind)
    with tempfile.TemporaryDirectory(prefix=owned_temporary_prefix("kernel")) as sockets:
        manager = kernel() if kernel is not None else None
        client = notebook_client(
            node,
            km=manager,
            kernel_name=name,
            timeout=limit,
            allow_errors=allow_errors,
            resources={"metadata": {"path": str(cwd)}},
            on_cell_start=runner.cell_start,
            on_cell_executed=runner.cell_executed,
            config=local_kernel_config(sockets),
        )
        # The kernel's own messages (its start-up warnings, a traceback as it is stopped in the
        # middle of a reply) go to a log, not into the command's output; the cells' output is
        # on IOPub as always.
        log = open(Path(sockets) / "kernel.log", "ab")  # noqa: SIM115 - closed below
        try:
            with client.setup_kernel(env=env, cleanup_kc=True, stderr=log):
                kernel_client: Any = client.kc

                def silently(code: str) -> None:
                    reply = run_sync(kernel_client.execute_interactive)(
                        code, silent=True, store_history=False, timeout=60
                    )
                    if reply["content"].get("status") != "ok":
                        content = reply["content"]
                        raise NbcellarError(
                            f"the kernel could not start nbcellar's cache: "
                            f"{content.get('ename')}: {content.get('evalue')}; "
                            "is nbcellar installed in the kernel's environment? (or --no-cache)"
                        )

                if store_root is not None and run_id is not None:  # nbcellar.artifacts()
                    folder = str(artifact_folder_of(store_root, run_id, Path(cwd)))
                    silently(protocol.set_artifacts(folder))
                    silently(protocol.set_run(run_id, resume_from))
                if store_root is not None:  # (quietly: a pooled kernel loaded it already)
                    silently(protocol.load_extension())
                    silently(protocol.parent_reports_failures())
                for index, cell in enumerate(client.nb.cells):
                    if cell.cell_type != "code":
                        continue
                    tags = list(cell.get("metadata", {}).get("tags", []))
                    if store_root is not None and tags:  # (the kernel forgets them after a cell)
                        silently(protocol.next_cell_tags(tags))
                    client.execute_cell(cell, index)
                if store_root is not None and run_id is not None:
                    silently(protocol.save_log(run_id))
                    requirements = _requirements(kernel_client)
                if store_root is not None and save_final:
                    final = _final_state(kernel_client, store_root)
                if store_root is not None:  # values still being written must land first
                    silently(protocol.flush())
                    store_failures = _write_failures(kernel_client)
                completed = True
                # Nothing left to wait for: stop the kernel at once rather than asking it to
                # shut down and polling until it has (half a second a run).
                client.shutdown_kernel = "immediate"
                stop_now(client.km)
        except CellExecutionError:
            pass  # the failing cell is recorded by cell_executed; later cells stay "not run"
        except CellTimeoutError:
            runner.fail_running(f"timed out after {limit} s")
        except DeadKernelError:
            runner.fail_running("kernel died")
        except KernelStartError as exc:
            log.flush()
            raise start_failure(exc, name, Path(sockets) / "kernel.log") from None
        finally:
            log.close()
    cells = runner.cells()
    if store_failures:
        _mark_unstored(node, cells, store_failures)
    # (Not a run with an error, even one expected: what its cell did before raising is not kept;
    # nor one whose values could not all be stored.)
    if (
        store_root is not None and completed and not store_failures
        and all(c.error is None for c in cells)
    ):  # fmt: skip
        _remember(nb, name, store_root, node, cells)
    seconds = time.perf_counter() - begin
    return ExecutionResult(
        notebook=from_nbformat(node),
        cells=cells,
        kernel_name=name,
        seconds=seconds,
        cached=store_root is not None,
        final_state=final,
        store_failures=store_failures,
        requirements=requirements,
    )


def _final_state(kernel_client: Any, store_root: Path) -> dict[str, Any]:
    """Have the kernel save its namespace into the store: the snapshot's id, what could not be
    saved and the cells that made it (see nbcellar.kernel.inherit.base_snapshot)."""
    from jupyter_core.utils import run_sync

    expression = (
        "__import__('nbcellar.kernel.inherit', fromlist=['base_snapshot'])"
        f".base_snapshot({str(store_root)!r}, None, [])"
    )
    reply = run_sync(kernel_client.execute_interactive)(
        "", silent=True, store_history=False, user_expressions={"state": expression}, timeout=600
    )
    answer = reply["content"].get("user_expressions", {}).get("state", {})
    if answer.get("status") != "ok":
        raise NbcellarError(
            f"the kernel could not save its final state: {answer.get('ename')}: "
            f"{answer.get('evalue')}"
        )
    state: dict[str, Any] = json.loads(ast.literal_eval(answer["data"]["text/plain"]))
    return state


def final_state(nb: Notebook, path: Path, store_root: Path) -> tuple[dict[str, Any], int, int]:
    """Run ``nb`` headless in its folder with caching and save its final namespace: the saved
    state (see :func:`_final_state`), how many cells ran and how many there are. A cell that
    raises is an error."""
    result = execute_notebook(nb, cwd=path.resolve().parent, store_root=store_root, save_final=True)
    failed = result.failed
    if failed is not None or result.final_state is None:
        where = f"cell [{failed.index + 1}] raised {failed.error}" if failed else "it stopped"
        raise NbcellarError(f"running {path.name} headless failed: {where}")
    ran = sum(c.status == "ran" for c in result.cells)
    return result.final_state, ran, len(result.cells)


def sources_of(nb: Notebook) -> list[Any]:
    from nbcellar.cache.notebooks import CellSource

    return [CellSource(c.source, tuple(c.tags)) for c in nb.code_cells]


def _remember(
    nb: Notebook, kernel_name: str, store_root: Path, node: Any, cells: tuple[CellRun, ...]
) -> None:
    """Remember a run in which every cell was restored or recorded: the next needs no kernel."""
    from nbcellar.cache.notebooks import ExecutedCell, remember_run
    from nbcellar.store import open_store

    code = [cell for cell in node.cells if cell.cell_type == "code"]
    executed = [
        ExecutedCell(run.key, list(cell.get("outputs", [])), cell.get("execution_count"))
        for cell, run in zip(code, cells, strict=True)
    ]
    language = node.metadata.get("language_info")
    store = open_store(store_root)
    try:
        remember_run(
            store, sources_of(nb), kernel_name, executed,
            {"language_info": language} if language else {},
        )  # fmt: skip
    finally:
        store.close()


def served_without_kernel(nb: Notebook, kernel_name: str, store_root: Path, cwd: Path) -> bool:
    """Whether running ``nb`` now would be served from a remembered run, with no kernel (so a
    grid starts kernels only for the runs that need one)."""
    from nbcellar.cache.notebooks import find_run
    from nbcellar.store import open_store

    store = open_store(store_root)
    try:
        found = find_run(store, sources_of(nb), kernel_name, store.root.parent, cwd.resolve())
    finally:
        store.close()
    return found is not None


def _write_artifacts(store: Any, snapshots: list[str], folder: Path) -> bool:
    """Write the files the remembered cells wrote in the artifact folder; False if one of
    them is no longer in the store."""
    from nbcellar.runfiles import RESERVED_FILES, write_files

    for snapshot in snapshots:
        restored = store.restore(snapshot, [RESERVED_FILES])
        if restored.missing:
            return False
        write_files(folder, restored.values[RESERVED_FILES])
    return True


def _restore_remembered(
    nb: Notebook,
    kernel_name: str,
    store_root: Path,
    cwd: Path,
    on_cell_start: Callable[[int], None] | None,
    on_cell_done: Callable[[CellRun], None] | None,
    run_id: str | None,
) -> ExecutionResult | None:
    """The executed notebook from a remembered run, if a kernel would restore every cell;
    what its cells logged is the run's log, as in a kernel that restored them."""
    import nbformat

    from nbcellar.cache.notebooks import find_run
    from nbcellar.store import open_store

    store = open_store(store_root)
    try:
        found = find_run(store, sources_of(nb), kernel_name, store.root.parent, cwd.resolve())
        if found is not None and not _write_artifacts(
            store, found.file_snapshots, artifact_folder_of(store_root, run_id, cwd)
        ):
            found = None
        if found is not None and run_id is not None:
            from nbcellar.runs.records import save_log_rows

            save_log_rows(store, run_id, found.logged)
    finally:
        store.close()
    if found is None:
        return None
    node = to_nbformat(nb)
    node.metadata.update(nbformat.from_dict(dict(found.metadata)))
    code = [(i, cell) for i, cell in enumerate(node.cells) if cell.cell_type == "code"]
    runs: list[CellRun] = []
    for number, ((_, cell), done) in enumerate(zip(code, found.cells, strict=True)):
        if on_cell_start is not None:
            on_cell_start(number)
        if done.key is None:  # an empty cell, which a kernel would not be given either
            run = CellRun(number, cell.get("id"), "not run", 0.0)
        else:
            cell.outputs = [nbformat.from_dict(dict(o)) for o in done.outputs]
            cell.execution_count = done.execution_count
            run = CellRun(
                number, cell.get("id"), "restored", 0.0,
                saved_seconds=done.saved_seconds, key=done.key,
            )  # fmt: skip
            cell.setdefault("metadata", {})["nbcellar"] = {
                "status": "restored",
                "seconds": 0.0,
                "saved_seconds": round(done.saved_seconds, 3),
            }
        runs.append(run)
        if on_cell_done is not None:
            on_cell_done(run)
    return ExecutionResult(
        notebook=from_nbformat(node),
        cells=tuple(runs),
        kernel_name=kernel_name,
        seconds=0.0,
        cached=True,
        kernel_started=False,
    )
