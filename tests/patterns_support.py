"""Everyday notebook patterns run with and without the cache, through real kernels.

A :class:`Pattern` is a small notebook (its cells, the project files beside it, an edit of an
earlier cell or file, a probe cell printing what a user would look at). Each runs in two
scenarios, each against runs without the cache in the same folder:

- :func:`batch` (``nbcellar run``): a fresh run; a first run with the cache; a second run of the
  notebook without its probe (served without a kernel when nbcellar can); a run with the probe,
  every cell restored as after a kernel restart; then the edited notebook with the cache,
  against the edited notebook run fresh.
- :func:`interactive` (JupyterLab): a kernel without nbcellar runs every cell, then the edit is
  made and the cells from the edited one on run again; a kernel with nbcellar runs every cell,
  restarts, runs every cell, then the same edit and re-run. What the kernels send on IOPub is
  compared message by message.

Kernels are forked from one server that imported ipykernel once (nbcellar's own fork server):
each run still gets a kernel of its own, in the pattern's folder, for about 0.15 s of CPU.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import tempfile
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Way = Literal["record", "rerun", "served", "edit", "status", "interactive", "live_edit"]
WAYS: tuple[Way, ...] = ("record", "rerun", "served", "edit", "status", "interactive", "live_edit")

PROBE_DIRECTIVE = "# nbcellar: nocache\n"  # the probe must look at the state, never be restored
ORIGINAL_MTIME = 1_600_000_000  # files get fixed times: an edit is always seen as newer
EDITED_MTIME = ORIGINAL_MTIME + 100
CELL_TIMEOUT = 60


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` by ``new`` in the one cell holding it, or in the file ``path``."""

    old: str
    new: str
    path: str | None = None


@dataclass(frozen=True)
class Pattern:
    """One everyday pattern as a small notebook: its cells, the project files beside it, an edit
    of an earlier cell or file, and the probe printing what a user would look at."""

    name: str
    cells: tuple[str, ...]
    edit: Edit
    probe: str
    files: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    live_from: int | None = None  # the cell a user re-runs from after the edit (see below)

    def __post_init__(self) -> None:
        if self.edit.path is None:
            holding = [c for c in self.cells if self.edit.old in c]
            assert len(holding) == 1, f"{self.name}: the edit must hit exactly one cell"
        else:
            assert self.edit.old in self.files[self.edit.path], f"{self.name}: edit misses"

    @property
    def edited_cells(self) -> tuple[str, ...]:
        if self.edit.path is not None:
            return self.cells
        return tuple(c.replace(self.edit.old, self.edit.new) for c in self.cells)

    @property
    def edited_files(self) -> dict[str, str]:
        files = dict(self.files)
        if self.edit.path is not None:
            files[self.edit.path] = files[self.edit.path].replace(self.edit.old, self.edit.new)
        return files

    @property
    def first_edited(self) -> int:
        """The first cell a user re-runs in the live kernel after the edit: the edited one (a
        file edit: every cell, unless the pattern says from where)."""
        if self.live_from is not None:
            return self.live_from
        if self.edit.path is not None:
            return 0
        return next(i for i, c in enumerate(self.cells) if self.edit.old in c)

    @property
    def probe_source(self) -> str:
        return PROBE_DIRECTIVE + self.probe


def pattern(
    name: str,
    cells: str,
    *,
    edit: Edit | tuple[str, str],
    probe: str,
    files: Mapping[str, str] | None = None,
    tags: Mapping[int, tuple[str, ...]] | None = None,
    live_from: int | None = None,
) -> Pattern:
    """A pattern from its cells written as one text, cells separated by ``# %%`` lines."""
    parts = [p.strip("\n") for p in re.split(r"^# %%$", textwrap.dedent(cells), flags=re.M)]
    return Pattern(
        name,
        tuple(p for p in parts if p.strip()),
        edit if isinstance(edit, Edit) else Edit(*edit),
        textwrap.dedent(probe).strip("\n"),
        {k: textwrap.dedent(v).lstrip("\n") for k, v in (files or {}).items()},
        dict(tags or {}),
        live_from,
    )


# -- what a user sees, normalised -----------------------------------------------------------

_NORMALISE = [
    (re.compile(r"0x[0-9a-fA-F]+"), "0x…"),
    (re.compile(r"[^\s'\"]*/ipykernel_\d+/\d+\.py"), "<cell file>"),
    (re.compile(r"Cell In\[\d+\]"), "Cell In[…]"),
    (re.compile(r"(CPU times|Wall time): [^\n]*"), r"\1: …"),
    (re.compile(r"[^\n]* per loop \(mean ± std\. dev\. of [^\n]*"), "… per loop"),
]
_SVG_VOLATILE = re.compile(r'(id|href)="#?[^"]*"|url\(#[^)]*\)|<dc:date>[^<]*</dc:date>')


def normal_text(text: str) -> str:
    for pattern_, replacement in _NORMALISE:
        text = pattern_.sub(replacement, text)
    return text


def normal_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """A display's data; an image as the hash of its bytes (a failure stays readable)."""
    import hashlib

    shown: dict[str, Any] = {}
    for mime, value in data.items():
        text = "".join(value) if isinstance(value, list) else value
        if mime == "image/svg+xml":
            text = _SVG_VOLATILE.sub("", text)
        if mime.startswith("image/") and isinstance(text, str):
            text = f"<{mime} {hashlib.sha1(text.encode()).hexdigest()[:12]}>"
        shown[mime] = normal_text(text) if isinstance(text, str) else text
    return shown


Shown = tuple[Any, ...]


def _merge_streams(items: list[Shown]) -> list[Shown]:
    """Consecutive writes to one stream as one (how they are cut depends on timing)."""
    merged: list[Shown] = []
    for item in items:
        last = merged[-1] if merged else None
        if item[0] == "stream" and last is not None and last[:2] == item[:2]:
            merged[-1] = ("stream", item[1], last[2] + item[2])
        else:
            merged.append(item)
    return [("stream", i[1], normal_text(i[2])) if i[0] == "stream" else i for i in merged]


def shown_outputs(outputs: Sequence[Mapping[str, Any]]) -> list[Shown]:
    """A saved cell's outputs as a user reads them."""
    items: list[Shown] = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            items.append(("stream", output["name"], str(output["text"])))
        elif kind in ("display_data", "execute_result"):
            items.append((kind, normal_data(output.get("data", {}))))
        elif kind == "error":
            items.append(("error", output["ename"], normal_text(str(output["evalue"]))))
    return _merge_streams(items)


def shown_messages(messages: Sequence[Mapping[str, Any]], ids: dict[str, str]) -> list[Shown]:
    """One cell's IOPub messages as a frontend renders them (display ids numbered in order of
    first appearance in ``ids``, shared by the cells of one session)."""
    items: list[Shown] = []
    for msg in messages:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            items.append(("stream", content["name"], content["text"]))
        elif kind in ("display_data", "update_display_data", "execute_result"):
            shown_id = None
            display_id = content.get("transient", {}).get("display_id")
            if display_id is not None:
                shown_id = ids.setdefault(display_id, f"display {len(ids)}")
            items.append((kind, normal_data(content["data"]), shown_id))
        elif kind == "clear_output":
            items.append(("clear_output", content["wait"]))
        elif kind == "error":
            items.append(("error", content["ename"], normal_text(content["evalue"])))
        elif kind.startswith("comm_"):  # widgets and other frontend extensions
            items.append((kind, content.get("target_name"), content.get("data")))
    return _merge_streams(items)


def differences(label: str, expected: Sequence[Any], got: Sequence[Any], what: str) -> list[str]:
    """One line per cell that differs: ``label`` cell [n] then what each side showed."""
    lines = []
    for number, (want, have) in enumerate(itertools.zip_longest(expected, got), start=1):
        if want != have:
            lines.append(f"{label} cell [{number}]: {what} {want!r}, with the cache {have!r}")
    return lines


# -- kernels --------------------------------------------------------------------------------


# What every kernel imports while it starts, beyond what nbcellar's fork server imports first
# (its debugger above all): imported once in the server instead of in each kernel. A notebook
# cannot tell (each kernel would have them all the same); the start costs a third less.
KERNEL_MODULES = (
    "ipykernel.debugger", "IPython.core.debugger", "IPython.core.completerlib",
    "IPython.core.oinspect", "IPython.core.logger", "IPython.extensions.storemagic",
    "tornado.gen", "tornado.locks", "tornado.queues", "tornado.platform.asyncio",
)  # fmt: skip


def _fork_server(folder: Path, env: Mapping[str, str]) -> Any:
    """nbcellar's fork server, started with the kernels' start-up modules imported too."""
    import subprocess
    import sys

    from nbcellar.runs.forkserver import ForkServer

    class Server(ForkServer):
        def __init__(self) -> None:
            self._folder = tempfile.TemporaryDirectory(prefix="nbcellar-forks-")
            self.address = str(Path(self._folder.name) / "server")
            code = "\n".join(
                [
                    "import os, signal, sys",
                    "sys.path[0] = os.getcwd()  # as under 'python -m' (kernels get theirs)",
                    *(f"import {name}" for name in KERNEL_MODULES),
                    "from nbcellar.runs.forkserver import serve",
                    "signal.signal(signal.SIGINT, signal.SIG_IGN)",
                    "serve(sys.argv[1])",
                ]
            )
            server_env = dict(env, JPY_PARENT_PID="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
            self.process = subprocess.Popen(
                [sys.executable, "-c", code, self.address],
                cwd=str(folder), env=server_env, stdin=subprocess.PIPE, start_new_session=True,
            )  # fmt: skip

    return Server()


class Kernels:
    """Fresh IPython kernels forked from one server, each in the folder it is asked for."""

    def __init__(self, folder: Path, env: Mapping[str, str]) -> None:
        from nbcellar.runs.forkserver import kernel_specs

        # Not pytest's variables: ipykernel does not forward what child processes and C code
        # write to file descriptors 1 and 2 when it sees PYTEST_CURRENT_TEST.
        self.env = {k: v for k, v in env.items() if not k.startswith("PYTEST_")}
        self.env["TMPDIR"] = str(folder / "tmp")  # what the kernels leave there goes with it
        (folder / "tmp").mkdir()
        self._server = _fork_server(folder, self.env)
        self._specs = kernel_specs(self._server)
        # Short: a socket's path is limited to about a hundred characters.
        self._sockets = tempfile.TemporaryDirectory(prefix="nbp-")
        self._count = itertools.count()

    def env_for(self, store: Path | None) -> dict[str, str]:
        env = dict(self.env)
        env.pop("NBCELLAR_STORE", None)
        if store is not None:
            env["NBCELLAR_STORE"] = str(store)
        return env

    def manager(self) -> Any:
        """An asynchronous kernel manager whose kernel will be forked (not started yet)."""
        from jupyter_client.manager import AsyncKernelManager

        from nbcellar.runs.execute import local_kernel_config

        folder = Path(self._sockets.name) / str(next(self._count))
        folder.mkdir()
        config = local_kernel_config(str(folder))
        return AsyncKernelManager(
            kernel_name="python3", config=config, kernel_spec_manager=self._specs
        )

    def close(self) -> None:
        self._server.close()
        self._sockets.cleanup()


@dataclass
class Folder:
    """A pattern's folder for one scenario: ``work/`` (the notebook's folder, the kernels'
    working directory) and the store beside it, so the project is their parent."""

    root: Path

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def store(self) -> Path:
        return self.root / ".nbcellar"

    def reset(self, files: Mapping[str, str], mtime: int = ORIGINAL_MTIME) -> None:
        """The notebook's folder as the project has it: its files only, with fixed times."""
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        for name, text in files.items():
            self.write(name, text, mtime)

    def set_aside(self) -> Path:
        """Move ``work/`` out of the way (see :meth:`put_back`)."""
        aside = self.root / "aside"
        shutil.rmtree(aside, ignore_errors=True)
        self.work.rename(aside)
        return aside

    def put_back(self, aside: Path) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        aside.rename(self.work)

    def write(self, name: str, text: str, mtime: int) -> None:
        path = self.work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.utime(path, (mtime, mtime))


# -- batch runs (nbcellar run) --------------------------------------------------------------


def notebook_of(cells: Sequence[str], tags: Mapping[int, tuple[str, ...]]) -> Any:
    import nbformat

    from nbcellar.notebook.model import from_nbformat

    node = nbformat.v4.new_notebook()
    node.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    for index, source in enumerate(cells):
        cell = nbformat.v4.new_code_cell(source)
        cell.id = f"c{index}"
        if index in tags:
            cell.metadata["tags"] = list(tags[index])
        node.cells.append(cell)
    return from_nbformat(node)


@dataclass(frozen=True)
class BatchRun:
    """One ``nbcellar run``: each cell's outputs as shown and status, what ``nbcellar status``
    predicted just before (None without a cache), whether a kernel was started."""

    shown: list[list[Shown]]
    statuses: list[str]
    predicted: list[str] | None
    kernel_started: bool


def run_batch(
    kernels: Kernels, folder: Folder, cells: Sequence[str], tags: Mapping[int, tuple[str, ...]],
    cached: bool,
) -> BatchRun:  # fmt: skip
    """Run the notebook as ``nbcellar run`` does (``cached``: with the folder's store)."""
    from jupyter_core.utils import run_sync

    from nbcellar.runs.execute import execute_notebook

    nb = notebook_of(cells, tags)
    store = folder.store if cached else None
    predicted = predict(nb, folder) if cached else None

    def kernel() -> Any:
        manager = kernels.manager()
        run_sync(manager.start_kernel)(cwd=str(folder.work), env=kernels.env_for(store))
        return manager

    result = execute_notebook(
        nb, cwd=folder.work, store_root=store, kernel=kernel, timeout=CELL_TIMEOUT
    )
    return BatchRun(
        [shown_outputs(c.outputs) for c in result.notebook.code_cells],
        ["ran" if c.status == "error" else c.status for c in result.cells],
        predicted,
        result.kernel_started,
    )


_AS_REPORTED = {"restore": "restored", "run": "ran", "always runs": "ran"}


def predict(nb: Any, folder: Folder) -> list[str]:
    """What ``nbcellar status`` says each cell would do, in the words ``nbcellar run`` uses."""
    from nbcellar.cache.status import predict as status_predict
    from nbcellar.store import open_store

    store = open_store(folder.store)
    try:
        found = status_predict(nb, store, folder.root, folder.work)
    finally:
        store.close()
    return [_AS_REPORTED[p.action] for p in found]


@dataclass(frozen=True)
class Batch:
    fresh: BatchRun  # without the cache
    recorded: BatchRun  # the first run with the cache, without the probe
    served: BatchRun  # the same again
    rerun: BatchRun  # with the probe
    edited_fresh: BatchRun  # the edited notebook (or project), without the cache
    edited: BatchRun  # the same with the cache, after the runs above

    @property
    def cached_runs(self) -> dict[str, BatchRun]:
        return {
            "first run": self.recorded, "second run": self.served, "re-run": self.rerun,
            "edited": self.edited,
        }  # fmt: skip


def batch(kernels: Kernels, folder: Folder, case: Pattern) -> Batch:
    """The runs of :class:`Batch`, in its order, in one folder (kept between runs, as after a
    restart, except that a run without the cache always starts from the project's files)."""
    with_probe = [*case.cells, case.probe_source]
    edited_with_probe = [*case.edited_cells, case.probe_source]
    folder.reset(case.files)
    fresh = run_batch(kernels, folder, with_probe, case.tags, cached=False)
    folder.reset(case.files)
    recorded = run_batch(kernels, folder, case.cells, case.tags, cached=True)
    served = run_batch(kernels, folder, case.cells, case.tags, cached=True)
    rerun = run_batch(kernels, folder, with_probe, case.tags, cached=True)
    aside = folder.set_aside()  # the edited run with the cache finds what these runs left
    folder.reset(case.edited_files, EDITED_MTIME)
    edited_fresh = run_batch(kernels, folder, edited_with_probe, case.tags, cached=False)
    folder.put_back(aside)
    apply_file_edit(folder, case)
    edited = run_batch(kernels, folder, edited_with_probe, case.tags, cached=True)
    return Batch(fresh, recorded, served, rerun, edited_fresh, edited)


def apply_file_edit(folder: Folder, case: Pattern) -> None:
    if case.edit.path is not None:
        folder.write(case.edit.path, case.edited_files[case.edit.path], EDITED_MTIME)


# -- interactive sessions (JupyterLab) ------------------------------------------------------


@dataclass(frozen=True)
class Executed:
    """One cell executed interactively: what came on IOPub, and the reply."""

    shown: list[Shown]
    status: str
    cached: str | None  # nbcellar's word for it (ran / restored), None without nbcellar


@dataclass(frozen=True)
class Interactive:
    plain: list[Executed]  # run all + probe, then the edit: re-run + probe
    first: list[Executed]  # with nbcellar: run all + probe
    restarted: list[Executed]  # after a restart: run all + probe, then the edit: re-run + probe


class Session:
    """A kernel driven through jupyter_client as JupyterLab drives it."""

    def __init__(self, kernels: Kernels, folder: Folder, cached: bool) -> None:
        self.kernels = kernels
        self.folder = folder
        self.cached = cached
        self.manager: Any = None
        self.client: Any = None
        self.ids: dict[str, str] = {}

    async def start(self) -> None:
        from nbcellar.runs.kernels import wait_until_ready

        self.manager = self.kernels.manager()
        env = self.kernels.env_for(self.folder.store if self.cached else None)
        await self.manager.start_kernel(cwd=str(self.folder.work), env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        await wait_until_ready(self.client, timeout=60)
        await self._load()

    async def _load(self) -> None:
        # As from the IPython profile: the extension loaded before the first cell, so cells
        # keep the numbers they have without it (``Out[2]`` is the second cell in both).
        if self.cached:
            reply = await self.client.execute_interactive(
                "%load_ext nbcellar", silent=True, store_history=False, timeout=60
            )
            assert reply["content"]["status"] == "ok", reply["content"]

    async def restart(self) -> None:
        """Restart as JupyterLab asks the server to (the kernel shuts down, writes land)."""
        from nbcellar.runs.kernels import wait_until_ready

        await self.manager.restart_kernel(now=False)
        self.ids = {}
        await wait_until_ready(self.client, timeout=60)
        await self._load()

    async def run(self, source: str) -> Executed:
        messages: list[dict[str, Any]] = []
        reply = await self.client.execute_interactive(
            source, timeout=CELL_TIMEOUT, output_hook=messages.append
        )
        cached = reply["metadata"].get("nbcellar")
        return Executed(
            shown_messages(messages, self.ids),
            reply["content"]["status"],
            cached["status"] if cached else None,
        )

    async def stop(self) -> None:
        from nbcellar.runs.kernels import stop_now

        if self.client is not None:
            self.client.stop_channels()
        if self.manager is not None:
            stop_now(self.manager)
            await self.manager.shutdown_kernel(now=True)


async def _run_all(session: Session, cells: Sequence[str]) -> list[Executed]:
    return [await session.run(c) for c in cells]


async def _edit_and_rerun(session: Session, case: Pattern) -> list[Executed]:
    apply_file_edit(session.folder, case)
    again = case.edited_cells[case.first_edited :]
    return await _run_all(session, [*again, case.probe_source])


async def _interactive(kernels: Kernels, folder: Folder, case: Pattern) -> Interactive:
    with_probe = [*case.cells, case.probe_source]
    folder.reset(case.files)
    plain = Session(kernels, folder, cached=False)
    try:
        await plain.start()
        plain_runs = await _run_all(plain, with_probe) + await _edit_and_rerun(plain, case)
    finally:
        await plain.stop()
    folder.reset(case.files)
    cached = Session(kernels, folder, cached=True)
    try:
        await cached.start()
        first = await _run_all(cached, with_probe)
        await cached.restart()
        restarted = await _run_all(cached, with_probe) + await _edit_and_rerun(cached, case)
    finally:
        await cached.stop()
    return Interactive(plain_runs, first, restarted)


def interactive(kernels: Kernels, folder: Folder, case: Pattern) -> Interactive:
    return asyncio.run(_interactive(kernels, folder, case))


SCENARIOS: dict[str, Callable[[Kernels, Folder, Pattern], Any]] = {
    "batch": batch,
    "interactive": interactive,
}
SCENARIO_OF: dict[Way, str] = {
    "record": "batch",
    "rerun": "batch",
    "served": "batch",
    "edit": "batch",
    "status": "batch",
    "interactive": "interactive",
    "live_edit": "interactive",
}
