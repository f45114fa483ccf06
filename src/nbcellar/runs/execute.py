"""Execute a notebook top to bottom in a real Jupyter kernel (nbclient), cell by cell.

Callers follow progress through two callbacks and get back the executed notebook plus one
:class:`CellRun` per code cell. A cell that raises stops the run (unless ``allow_errors``); the
partial notebook, with the error in that cell's outputs, is still returned.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nbcellar.errors import NbcellarError
from nbcellar.notebook.model import Notebook, from_nbformat, to_nbformat

CellStatus = Literal["ran", "error", "not run"]


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


@dataclass(frozen=True)
class ExecutionResult:
    notebook: Notebook
    cells: tuple[CellRun, ...]
    kernel_name: str
    seconds: float

    @property
    def failed(self) -> CellRun | None:
        return next((c for c in self.cells if c.status == "error"), None)


def _error_line(outputs: list[Any]) -> str | None:
    for output in outputs:
        if output.get("output_type") == "error":
            value = str(output.get("evalue", "")).strip().splitlines()
            return f"{output.get('ename', 'Error')}: {value[0] if value else ''}".rstrip(": ")
    return None


def execute_notebook(
    nb: Notebook,
    *,
    cwd: str | Path,
    kernel_name: str | None = None,
    timeout: float | None = None,
    allow_errors: bool = False,
    on_cell_start: Callable[[int], None] | None = None,
    on_cell_done: Callable[[CellRun], None] | None = None,
) -> ExecutionResult:
    """Run every code cell of ``nb`` in a fresh kernel started in ``cwd``."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    from nbclient import NotebookClient

    name = kernel_name or nb.kernel_name or "python3"
    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise KernelNotFound(
            f"kernel {name!r} is not installed (see 'jupyter kernelspec list'); "
            "install it or pass --kernel python3"
        ) from None

    node = to_nbformat(nb)
    code_index = {i: n for n, i in enumerate(i for i, c in enumerate(nb.cells) if c.is_code)}
    runs: dict[int, CellRun] = {}
    started: dict[int, float] = {}

    def cell_start(cell: Any, cell_index: int, **_: Any) -> None:
        started[cell_index] = time.perf_counter()
        if on_cell_start is not None and cell_index in code_index:
            on_cell_start(code_index[cell_index])

    def cell_executed(cell: Any, cell_index: int, execute_reply: Any, **_: Any) -> None:
        if cell_index not in code_index:
            return
        seconds = time.perf_counter() - started.get(cell_index, time.perf_counter())
        ok = execute_reply is not None and execute_reply["content"].get("status") == "ok"
        run = CellRun(
            index=code_index[cell_index],
            cell_id=cell.get("id"),
            status="ran" if ok else "error",
            seconds=seconds,
            error=None if ok else _error_line(cell.get("outputs", [])),
        )
        runs[cell_index] = run
        if on_cell_done is not None:
            on_cell_done(run)

    begin = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nbcellar-kernel-") as sockets:
        client = NotebookClient(
            node,
            kernel_name=name,
            timeout=timeout,
            allow_errors=allow_errors,
            resources={"metadata": {"path": str(cwd)}},
            on_cell_start=cell_start,
            on_cell_executed=cell_executed,
            config=local_kernel_config(sockets),
        )
        _run_client(client, started, runs, code_index, nb, timeout)
    seconds = time.perf_counter() - begin
    cells = tuple(
        runs.get(i) or CellRun(index=n, cell_id=nb.cells[i].id, status="not run", seconds=0.0)
        for i, n in code_index.items()
    )
    return ExecutionResult(
        notebook=from_nbformat(node), cells=cells, kernel_name=name, seconds=seconds
    )


def local_kernel_config(socket_dir: str) -> Any:
    """Kernels on this machine talk over Unix sockets in ``socket_dir``, not open TCP ports."""
    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = os.path.join(socket_dir, "kernel")
    return config


def _run_client(
    client: Any,
    started: dict[int, float],
    runs: dict[int, CellRun],
    code_index: dict[int, int],
    nb: Notebook,
    timeout: float | None,
) -> None:
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    try:
        client.execute()
    except CellExecutionError:
        pass  # the failing cell is recorded by cell_executed; later cells stay "not run"
    except (CellTimeoutError, DeadKernelError) as exc:
        timed_out = isinstance(exc, CellTimeoutError)
        why = f"timed out after {timeout:g} s" if timed_out else "kernel died"
        for cell_index in set(started) - set(runs):
            if cell_index in code_index:
                elapsed = time.perf_counter() - started[cell_index]
                runs[cell_index] = CellRun(
                    code_index[cell_index], nb.cells[cell_index].id, "error", elapsed, why
                )
