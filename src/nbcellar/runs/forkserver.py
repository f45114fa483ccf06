"""Kernels forked from a process that imported their machinery once.

A run needs a fresh kernel, and most of a fresh IPython kernel's start-up is importing
ipykernel, IPython and (with caching) nbcellar's own modules: about 0.35 s of CPU, paid again
by every run of a grid. The pool (see :mod:`nbcellar.runs.pool`) starts one fork server per
grid instead: ``python -m nbcellar.runs.forkserver SOCKET`` imports that machinery, and nothing
else (no user library: what a notebook imports, it imports itself, in its own order), then
waits. jupyter_client starts :mod:`nbcellar.runs.forked_kernel` in place of the kernel; that
small process asks the server, which forks a child that becomes the kernel: its own session
and process group, the streams, folder and environment jupyter_client gave, then
``ipykernel_launcher`` exactly as the kernel spec says. The server reports each child's exit
to the process standing for it, and ends when the pool closes its standard input.

Only kernel specs that run ``ipykernel_launcher`` with this very interpreter are forked; any
other kernel starts as jupyter_client would start it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

PRELOADED = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.inprocess.ipkernel",
    "nbcellar.kernel.extension",
    "nbcellar.runs.records",
)
PYTHONS = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}


def forkable(argv: list[str]) -> bool:
    """Whether a kernel spec's command is ``ipykernel_launcher`` run by this interpreter."""
    if len(argv) < 3 or argv[1:3] != ["-m", "ipykernel_launcher"]:
        return False
    return argv[0] in PYTHONS or os.path.realpath(argv[0]) == os.path.realpath(sys.executable)


class ForkServer:
    """One fork server process, started in ``cwd`` with ``env`` (the kernels' own); ``cwd``
    None: in a folder of its own, empty, so that no module of a notebook's folder stands in
    for one the server imports (each kernel is forked into its own folder)."""

    def __init__(self, cwd: Path | None, env: dict[str, str]) -> None:
        from nbcellar.owners import owned_temporary_prefix, remove_orphans

        remove_orphans("forks")  # (what killed runs left behind)
        self._folder = tempfile.TemporaryDirectory(prefix=owned_temporary_prefix("forks"))
        self.address = str(Path(self._folder.name) / "server")
        # JPY_PARENT_PID as each kernel will have it (ipykernel reads it when imported): 1,
        # "do not watch your parent" — the stand-in's connection tells the kernel when to end.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nbcellar.runs.forkserver", self.address],
            cwd=self._folder.name if cwd is None else str(cwd),
            env=dict(env, JPY_PARENT_PID="1"), stdin=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip

    def command(self, argv: list[str]) -> list[str]:
        """The command jupyter_client runs instead of the kernel spec's ``argv``."""
        client = str(Path(__file__).with_name("forked_kernel.py"))
        return [sys.executable, "-I", "-S", client, self.address, *argv]

    def close(self, wait: bool = True) -> None:
        """Stop the server (kernels it forked live on until they are shut down); again: no-op.
        ``wait`` False: without waiting for it to end (it ends once its kernels have; a
        thread reaps it)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        if not wait:
            threading.Thread(target=self.close, name="nbcellar-fork-server-close",
                             daemon=True).start()  # fmt: skip
            return
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._folder.cleanup()


def kernel_specs(server: ForkServer) -> Any:
    """A kernel spec manager whose ipykernel specs start through ``server``."""
    from jupyter_client.kernelspec import KernelSpecManager

    class ForkingSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> Any:
            spec = super().get_kernel_spec(kernel_name)
            if forkable(spec.argv):
                spec.argv = server.command(list(spec.argv))
            return spec

    return ForkingSpecs()


# -- the server process ---------------------------------------------------------------------


def _receive(connection: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """One request: its length, with the three standard streams, then the JSON."""
    head, fds, _, _ = socket.recv_fds(connection, 4, 3)
    if len(head) < 4:
        head += connection.recv(4 - len(head), socket.MSG_WAITALL)
    (size,) = struct.unpack("!I", head)
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the request was cut short")
        data += chunk
    return json.loads(data), fds


def _become_kernel(
    connection: socket.socket,
    request: dict[str, Any],
    fds: list[int],
    started_in: str,
    others: list[socket.socket],
) -> None:
    """In the forked child: become the kernel the request describes; never returns."""
    code = 1
    try:
        for other in others:  # the connections of the kernels forked before this one
            other.close()
        os.setsid()  # a process group of its own: interrupts reach it and what it starts
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        env = dict(request["env"])
        env["JPY_PARENT_PID"] = "1"  # its parent is this server (see ForkServer)
        os.environ.clear()
        os.environ.update(env)
        os.chdir(request["cwd"])
        if sys.path and sys.path[0] == started_in:  # the kernel's folder first, as usual
            sys.path[0] = os.getcwd()

        def watch() -> None:
            """The stand-in process ended (killed, or it lost its parent): so does the kernel."""
            try:
                while connection.recv(4096):
                    pass
            except OSError:
                pass
            os.killpg(0, signal.SIGKILL)

        threading.Thread(target=watch, name="nbcellar-stand-in", daemon=True).start()
        import runpy

        sys.argv = [request["argv"][2], *request["argv"][3:]]
        try:
            runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed stream
                stream.flush()
        os._exit(code)


def serve(address: str) -> None:
    for name in PRELOADED:
        __import__(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        started_in = os.getcwd()
        listener.bind(address)
    except FileNotFoundError:  # (its folder is gone: the command that started it has ended)
        return
    listener.listen(64)
    children: dict[int, socket.socket] = {}
    stdin = sys.stdin.fileno()
    open_input = True
    while open_input or children:
        watched = [listener, stdin] if open_input else []
        readable = select.select(watched, [], [], 0.05)[0]
        while children:  # report the kernels that ended to their stand-ins
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            connection = children.pop(pid, None)
            if connection is not None:
                with contextlib.suppress(OSError):  # the stand-in is gone already
                    connection.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
                connection.close()
        if stdin in readable and not os.read(stdin, 4096):
            open_input = False  # the pool closed: no new kernels; wait for the running ones
            listener.close()
        if open_input and listener in readable:
            connection, _ = listener.accept()
            try:
                request, fds = _receive(connection)
            except (OSError, ValueError, ConnectionError):
                connection.close()
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                _become_kernel(connection, request, fds, started_in, list(children.values()))
            for fd in fds:
                os.close(fd)
            children[pid] = connection
            connection.sendall(f"pid {pid}\n".encode())


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pool stops us, not the terminal
    serve(sys.argv[1])
