"""An in-process IPython shell with nbcellar loaded, restartable like a kernel; real Jupyter
servers in a private runtime directory."""

from __future__ import annotations

import gc
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from nbcellar.cache.engine import CellCache, Outcome
from nbcellar.kernel.extension import CellCacheExtension
from nbcellar.store import open_store
from tests.process_state import ProcessState


@dataclass
class CellRun:
    source: str
    stdout: str
    result: str | None
    displays: list[dict[str, Any]]
    outcome: Outcome | None
    success: bool


@dataclass
class Session:
    """One IPython shell; ``restart`` empties it like a kernel restart (the store stays)."""

    shell: Any
    store_dir: Path
    project: Path
    extension: CellCacheExtension | None = None
    runs: list[CellRun] = field(default_factory=list)
    process: ProcessState | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # (hypothesis shows the fixture with a failing example)
        return f"Session({str(self.project)!r}, cached={self.extension is not None})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def start(self, cached: bool = True) -> None:
        """Empty the shell and put the process state back as a new kernel finds it."""
        if self.process is None:
            self.process = ProcessState(self.project)
        self.process.reset()
        self.shell.reset(new_session=False)
        if self.extension is not None:
            self.extension.unregister()  # waits for background writes, as a kernel exit does
            self.extension = None
        if cached:
            store = open_store(self.store_dir)
            self.extension = CellCacheExtension(self.shell, CellCache(store, self.project))
            self.extension.register()

    def run(self, source: str, tags: list[str] | None = None) -> CellRun:
        if self.extension is not None:
            self.extension.next_tags = list(tags or [])
            self.extension.cache.last_outcome = None
        with capture_output(display=True) as captured:
            result = self.shell.run_cell(source, store_history=True)
        outcome = self.extension.cache.last_outcome if self.extension else None
        value = result.result
        run = CellRun(
            source,
            re.sub(r"Out\[\d+\]: ", "", captured.stdout),  # the terminal's prompt numbers differ
            None if value is None else repr(value),
            [dict(o.data) for o in captured.outputs],
            outcome,
            bool(result.success),
        )
        self.runs.append(run)
        return run

    def run_all(self, cells: list[str]) -> list[CellRun]:
        return [self.run(c) for c in cells]

    @property
    def ns(self) -> dict[str, Any]:
        hidden = set(self.shell.user_ns_hidden)
        return {
            k: v for k, v in self.shell.user_ns.items()
            if k not in hidden and not k.startswith("_")
        }  # fmt: skip


@pytest.fixture(scope="session")
def ipython() -> Any:
    real_main = sys.modules["__main__"]
    shell = InteractiveShell.instance()
    # The shell makes its user namespace the process's __main__ (as a kernel does): only while
    # a session uses it, or later tests that start processes (multiprocessing's spawn reads
    # __main__) would meet a module that is not one.
    sys.modules["__main__"] = real_main
    return shell


@pytest.fixture
def session(ipython: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # as a kernel started in the notebook's folder
    # The shell's reset collects garbage: the objects of the whole test run are left out of
    # it (a restarted kernel is a new process, with none of them), or each reset would walk
    # them all (most of the promise test's time, late in a full run).
    gc.freeze()
    real_main = sys.modules["__main__"]
    sys.modules["__main__"] = ipython.user_module
    current = Session(ipython, tmp_path / ".nbcellar", tmp_path)
    try:
        current.start()
        yield current
        if current.extension is not None:
            current.extension.unregister()
        ipython.reset(new_session=False)
        if current.process is not None:
            current.process.reset()
    finally:
        sys.modules["__main__"] = real_main
        gc.unfreeze()


@dataclass
class JupyterServer:
    """A real ``jupyter server`` subprocess, driven through its REST API as JupyterLab drives it."""

    url: str
    token: str
    root_dir: Path
    process: subprocess.Popen[bytes]
    log: Path
    sessions: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"token {self.token}")
        request.add_header("Content-Type", "application/json")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def open_notebook(self, path: str) -> dict[str, Any]:
        """Open ``path`` (relative to the root) with a python3 kernel; returns the session."""
        session = self.api(
            "POST",
            "api/sessions",
            {"path": path, "type": "notebook", "name": path, "kernel": {"name": "python3"}},
        )
        self.sessions.append(session["id"])
        return dict(session)

    def kernel(self, session: dict[str, Any]) -> dict[str, Any]:
        """The session's kernel as the server reports it now."""
        return dict(self.api("GET", f"api/sessions/{session['id']}")["kernel"])

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                self.api("GET", "api/status")
                return
            except (OSError, ValueError):
                time.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"jupyter server at {self.url} did not start:\n{tail}")

    def stop(self) -> None:
        """Shut every session's kernel down, then the server, as a user closing Jupyter would."""
        try:
            for session_id in self.sessions:
                self.api("DELETE", f"api/sessions/{session_id}")
            self.api("POST", "api/shutdown")
            self.process.wait(timeout=20)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def jupyter_runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private Jupyter runtime directory, so tests never see the developer's own servers."""
    folder = tmp_path_factory.mktemp("jupyter-runtime")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_RUNTIME_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def jupyter_servers(
    jupyter_runtime_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., list[JupyterServer]]]:
    """Start ``count`` real Jupyter servers at once (on ``root_dir``, default a fresh folder);
    all are stopped at the end of the module."""
    started: list[JupyterServer] = []

    def start(count: int = 1, root_dir: Path | None = None) -> list[JupyterServer]:
        root = root_dir or tmp_path_factory.mktemp("jupyter-root")
        batch = []
        for _ in range(count):
            port, token = free_port(), secrets.token_hex(16)
            log = tmp_path_factory.mktemp("jupyter-log") / "server.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [
                        sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
                        f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
                        f"--ServerApp.root_dir={root}",
                    ],
                    cwd=root, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            server = JupyterServer(f"http://127.0.0.1:{port}/", token, root, process, log)
            started.append(server)
            batch.append(server)
        deadline = time.monotonic() + 30
        for server in batch:
            server.wait_ready(deadline)
        return batch

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def jupyter_server(jupyter_servers: Callable[..., list[JupyterServer]]) -> JupyterServer:
    """One real Jupyter server for the module, in the private runtime directory."""
    return jupyter_servers()[0]
