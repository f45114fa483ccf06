"""Finding a notebook's kernel in real Jupyter servers, started in a private runtime directory and
driven through their REST API as JupyterLab drives them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest

from nbcellar.kernel.servers import (
    RunningNotebook,
    ServerError,
    ServerUnreachableError,
    SeveralKernelsWarning,
    TokenRejectedError,
    find_running,
    paired_files,
    running_servers,
)
from tests.kernel.conftest import JupyterServer, free_port

pytestmark = pytest.mark.slow

PAIRED = {"jupytext": {"formats": "ipynb,py:percent"}}


def write_notebook(path: Path, metadata: dict[str, Any] | None = None) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nb.metadata.update(metadata or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def write_script(notebook: Path, script: Path) -> Path:
    import jupytext

    script.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(nbformat.read(notebook, as_version=4), script, fmt="py:percent")
    return script


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    write_script(write_notebook(root / "base.ipynb", PAIRED), root / "base.py")
    write_notebook(root / "shared.ipynb")
    (root / "shared.py").write_text("def helper():\n    return 1\n")  # a module, not its pair
    write_notebook(root / "lonely.ipynb")
    return root


@pytest.fixture(scope="module")
def servers(
    jupyter_servers: Callable[..., list[JupyterServer]], project: Path
) -> list[JupyterServer]:
    return jupyter_servers(2, project)


@pytest.fixture(scope="module")
def sessions(servers: list[JupyterServer]) -> dict[str, dict[str, Any]]:
    first, second = servers
    return {
        "base": first.open_notebook("base.ipynb"),
        "shared on first": first.open_notebook("shared.ipynb"),
        "shared on second": second.open_notebook("shared.ipynb"),
    }


@contextmanager
def kernel_client(connection_file: Path) -> Iterator[Any]:
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=str(connection_file))
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield client
    finally:
        client.stop_channels()


def evaluate(client: Any, code: str) -> str | None:
    shown: list[str] = []

    def keep(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "execute_result":
            shown.append(msg["content"]["data"]["text/plain"])

    reply = client.execute_interactive(code, timeout=60, output_hook=keep)
    assert reply["content"]["status"] == "ok"
    return shown[0] if shown else None


def where(found: RunningNotebook | None) -> tuple[Any, ...]:
    assert found is not None
    return found.path, found.server_url, found.kernel_id, found.connection_file


def test_an_open_notebook_is_found_and_its_kernel_answers(
    project: Path,
    servers: list[JupyterServer],
    sessions: dict[str, dict[str, Any]],
    jupyter_runtime_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(project)
    found = find_running("base.ipynb")
    assert found is not None
    assert found.path == project.resolve() / "base.ipynb"
    assert found.server_url == servers[0].url
    assert found.kernel_id == sessions["base"]["kernel"]["id"]
    assert found.kernel_name == "python3"
    assert found.execution_state in ("starting", "idle", "busy")
    assert found.connection_file == jupyter_runtime_dir / f"kernel-{found.kernel_id}.json"
    assert found.connection_file.is_file()
    assert where(find_running(project / "base.ipynb")) == where(found)
    monkeypatch.chdir(project / "..")
    assert where(find_running(Path(project.name) / "base.ipynb")) == where(found)

    with kernel_client(found.connection_file) as client:
        assert evaluate(client, "x = 41 + 1") is None
        assert evaluate(client, "x") == "42"


def test_a_notebook_open_nowhere_is_none(
    project: Path, sessions: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    assert find_running("lonely.ipynb") is None
    assert find_running("missing.ipynb") is None
    assert find_running("shared.py") is None  # same stem as an open notebook, but not its pair


def test_several_kernels_the_most_recently_active_wins_and_the_others_are_named(
    servers: list[JupyterServer],
    sessions: dict[str, dict[str, Any]],
    project: Path,
    jupyter_runtime_dir: Path,
) -> None:
    first, second = servers
    older, newer = sessions["shared on first"], sessions["shared on second"]
    with kernel_client(jupyter_runtime_dir / f"kernel-{newer['kernel']['id']}.json"):
        pass  # the second server's kernel, started last, is ready
    with kernel_client(jupyter_runtime_dir / f"kernel-{older['kernel']['id']}.json") as client:
        evaluate(client, "y = 'used last'")
    deadline = time.monotonic() + 10
    while first.kernel(older)["last_activity"] <= second.kernel(newer)["last_activity"]:
        assert time.monotonic() < deadline, "the first server never saw its kernel's activity"
        time.sleep(0.05)

    with pytest.warns(SeveralKernelsWarning) as record:
        found = find_running(project / "shared.ipynb")
    assert found is not None
    assert (found.server_url, found.kernel_id) == (first.url, older["kernel"]["id"])
    assert len(record) == 1
    message = str(record[0].message)
    assert "\n" not in message
    assert f"using kernel {older['kernel']['id']} on {first.url}" in message
    assert f"also found: kernel {newer['kernel']['id']} on {second.url}" in message


def test_a_rejected_token_is_one_line_naming_the_server(
    servers: list[JupyterServer],
    jupyter_runtime_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = servers[0]
    info_file = jupyter_runtime_dir / f"jpserver-{server.pid}.json"
    info = json.loads(info_file.read_text())
    info["token"] = "not-" + info["token"]
    (tmp_path / info_file.name).write_text(json.dumps(info))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))

    with pytest.raises(TokenRejectedError) as error:
        find_running("base.ipynb")
    message = str(error.value)
    assert "\n" not in message
    assert f"Jupyter server {server.url}" in message
    assert f"rejected the token in its runtime file {tmp_path / info_file.name}" in message


@pytest.fixture
def server_pid() -> Iterator[int]:
    """A live process of this user that looks like a Jupyter server (its command says so):
    the process a hand-written runtime file names."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "jupyter"])
    cmdline = Path(f"/proc/{process.pid}/cmdline")
    deadline = time.monotonic() + 10
    while cmdline.exists() and b"jupyter" not in cmdline.read_bytes():  # (started, named)
        assert time.monotonic() < deadline, "the stand-in server process did not start"
        time.sleep(0.01)
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def test_a_server_that_does_not_answer_is_one_line_saying_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_pid: int
) -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        info = {"url": url, "token": "t", "root_dir": str(tmp_path), "pid": server_pid}
        (tmp_path / "jpserver-hung.json").write_text(json.dumps(info))
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
        assert [s["pid"] for s in running_servers()] == [server_pid]
        with pytest.raises(ServerUnreachableError) as error:
            find_running("base.ipynb", timeout=1.0)
    message = str(error.value)
    assert "\n" not in message
    assert f"Jupyter server {url} (pid {server_pid}) did not answer" in message
    assert "jupyter server stop" in message


class _Recorder:
    """Loopback HTTP servers: one answering every request with a redirect to the other,
    which notes the Authorization headers it is sent."""

    def __init__(self) -> None:
        import http.server
        import threading

        seen: list[str | None] = []
        self.seen = seen

        class Target(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.headers.get("Authorization"))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"[]")

            def log_message(self, *args: Any) -> None: ...

        self.target = http.server.HTTPServer(("127.0.0.1", 0), Target)
        elsewhere = f"http://127.0.0.1:{self.target.server_port}/steal"

        class Redirect(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(302)
                self.send_header("Location", elsewhere)
                self.end_headers()

            def log_message(self, *args: Any) -> None: ...

        self.redirect = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
        for server in (self.target, self.redirect):
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        for server in (self.target, self.redirect):
            server.shutdown()
            server.server_close()


def test_a_redirect_is_not_followed_with_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_pid: int
) -> None:
    servers = _Recorder()
    try:
        url = f"http://127.0.0.1:{servers.redirect.server_port}/"
        info = {"url": url, "token": "secret", "root_dir": str(tmp_path), "pid": server_pid}
        (tmp_path / "jpserver-1.json").write_text(json.dumps(info))
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
        with pytest.raises(ServerError, match=r"redirect to .*/steal.*does not follow it"):
            find_running("base.ipynb", timeout=5)
    finally:
        servers.close()
    assert servers.seen == []  # the token never left for the other address


def test_a_runtime_file_naming_a_process_that_is_no_jupyter_server_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = {"url": "http://127.0.0.1:9/", "token": "secret", "root_dir": str(tmp_path),
            "pid": os.getpid()}  # fmt: skip
    (tmp_path / "jpserver-2.json").write_text(json.dumps(info))
    assert running_servers(tmp_path) == []


def test_stale_runtime_files_are_skipped_silently(
    project: Path,
    servers: list[JupyterServer],
    sessions: dict[str, dict[str, Any]],
    jupyter_runtime_dir: Path,
    server_pid: int,
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = {
        jupyter_runtime_dir / f"jpserver-{dead.pid}.json": dead.pid,  # its process is gone
        jupyter_runtime_dir / "jpserver-closed.json": server_pid,  # alive, but nothing listens
    }
    for file, pid in stale.items():
        info = {"url": f"http://127.0.0.1:{free_port()}/", "token": "t", "root_dir": str(project)}
        file.write_text(json.dumps({**info, "pid": pid}))
    try:
        pids = {s["pid"] for s in running_servers()}
        assert pids == {servers[0].pid, servers[1].pid, server_pid}
        found = find_running(project / "base.ipynb")
        assert found is not None
        assert found.kernel_id == sessions["base"]["kernel"]["id"]
    finally:
        for file in stale:
            file.unlink()


def test_running_servers_lists_what_jupyter_server_lists(servers: list[JupyterServer]) -> None:
    from jupyter_server.serverapp import list_running_servers

    def key(info: dict[str, Any]) -> tuple[Any, ...]:
        return info["url"], info["pid"], info["token"], info["root_dir"]

    ours = sorted(map(key, running_servers()))
    assert ours == sorted(map(key, list_running_servers()))
    assert ours == sorted((s.url, s.pid, s.token, str(s.root_dir)) for s in servers)


def test_a_paired_percent_script_finds_its_notebooks_kernel(
    project: Path, sessions: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    found = find_running("base.py")
    assert found is not None
    assert found.path == project.resolve() / "base.ipynb"
    assert found.kernel_id == sessions["base"]["kernel"]["id"]


def test_pairing_is_read_as_jupytext_reads_it(tmp_path: Path) -> None:
    tmp_path = tmp_path.resolve()
    # Declared in the notebook's metadata, read from either side.
    notebook = write_notebook(tmp_path / "a.ipynb", PAIRED)
    script = write_script(notebook, tmp_path / "a.py")
    assert paired_files(notebook) == paired_files(script) == {notebook, script}
    # Only the notebook declares it (the script has no header, or does not exist yet).
    script.write_text("# %%\nx = 1\n")
    assert paired_files(script) == {notebook, script}
    script.unlink()
    assert paired_files(script) == {notebook, script}
    # Paired across folders with prefixes.
    formats = {"jupytext": {"formats": "notebooks///ipynb,scripts///py:percent"}}
    notebook = write_notebook(tmp_path / "notebooks" / "b.ipynb", formats)
    script = write_script(notebook, tmp_path / "scripts" / "b.py")
    assert paired_files(script) == paired_files(notebook) == {notebook, script}
    # Declared by a jupytext.toml for the folder, and written in neither file.
    configured = tmp_path / "configured"
    notebook = write_notebook(configured / "c.ipynb")
    script = configured / "c.py"
    script.write_text("# %%\nx = 1\n")
    assert paired_files(script) == {script}
    (configured / "jupytext.toml").write_text('formats = "ipynb,py:percent"\n')
    assert paired_files(script) == paired_files(notebook) == {notebook, script}
