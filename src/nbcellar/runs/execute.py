"""Execute a notebook top to bottom in a real Jupyter kernel (nbclient), cell by cell.

With caching on, the kernel loads the nbcellar extension first (``%load_ext nbcellar``, using
the same store as the caller) and is told each cell's tags before the cell runs; each execute
reply then says whether the cell was restored or ran. Callers follow progress through two
callbacks and get back the executed notebook plus one :class:`CellRun` per code cell. A cell
that raises stops the run (unless ``allow_errors``); the partial notebook is still returned.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nbcellar.errors import NbcellarError
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


@dataclass(frozen=True)
class ExecutionResult:
    notebook: Notebook
    cells: tuple[CellRun, ...]
    kernel_name: str
    seconds: float
    cached: bool

    @property
    def failed(self) -> CellRun | None:
        return next((c for c in self.cells if c.status == "error"), None)

    @property
    def saved_seconds(self) -> float:
        return sum(c.saved_seconds for c in self.cells)


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
        cached = (execute_reply or {}).get("metadata", {}).get("nbcellar") or {}
        status: CellStatus = "error" if not ok else "ran"
        if ok and cached.get("status") == "restored":
            status = "restored"
        run = CellRun(
            index=self.code_index[cell_index],
            cell_id=cell.get("id"),
            status=status,
            seconds=seconds,
            error=None if ok else _error_line(cell.get("outputs", [])),
            saved_seconds=float(cached.get("saved_seconds", 0.0)) if ok else 0.0,
        )
        if cached:
            cell.setdefault("metadata", {})["nbcellar"] = {
                "status": status,
                "seconds": round(seconds, 3),
                "saved_seconds": round(run.saved_seconds, 3),
            }
        self.runs[cell_index] = run
        if self.on_cell_done is not None:
            self.on_cell_done(run)

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
) -> ExecutionResult:
    """Run every code cell of ``nb`` in a fresh kernel started in ``cwd``.

    With ``store_root`` the kernel caches its cells in that store (``%load_ext nbcellar``).
    """
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    name = kernel_name or nb.kernel_name or "python3"
    check_kernel(name)
    node = to_nbformat(nb)
    runner = _Runner(nb, on_cell_start, on_cell_done)
    env = dict(os.environ)
    if store_root is not None:
        env["NBCELLAR_STORE"] = str(store_root)
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nbcellar-kernel-") as sockets:
        client = NotebookClient(
            node,
            kernel_name=name,
            timeout=timeout,
            allow_errors=allow_errors,
            resources={"metadata": {"path": str(cwd)}},
            on_cell_start=runner.cell_start,
            on_cell_executed=runner.cell_executed,
            config=local_kernel_config(sockets),
        )
        try:
            with client.setup_kernel(env=env):
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

                if store_root is not None:
                    silently("%load_ext nbcellar")
                for index, cell in enumerate(client.nb.cells):
                    if cell.cell_type != "code":
                        continue
                    if store_root is not None:
                        tags = list(cell.get("metadata", {}).get("tags", []))
                        silently(f"get_ipython().nbcellar.next_tags = {json.dumps(tags)}")
                    client.execute_cell(cell, index)
                if store_root is not None:  # values still being written must land first
                    silently("get_ipython().nbcellar.flush()")
        except CellExecutionError:
            pass  # the failing cell is recorded by cell_executed; later cells stay "not run"
        except CellTimeoutError:
            runner.fail_running(f"timed out after {timeout:g} s")
        except DeadKernelError:
            runner.fail_running("kernel died")
    seconds = time.perf_counter() - begin
    return ExecutionResult(
        notebook=from_nbformat(node),
        cells=runner.cells(),
        kernel_name=name,
        seconds=seconds,
        cached=store_root is not None,
    )
