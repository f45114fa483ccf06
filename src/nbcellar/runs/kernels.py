"""Talking to a run's kernel without the fixed waits of the generic clients.

jupyter_client's ``wait_for_ready`` ends by draining IOPub until nothing came for 0.2 s, and
stopping a kernel polls every 0.1 s until it is gone: together about a third of a second per
run, more than a trivial run's kernel needs to start once forked. Here readiness ends as soon
as the kernel's IOPub reported the ``kernel_info`` request done (the channel is connected and
nothing of it is left to drain), and a kernel is stopped by killing its process group and
reaping it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import time
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError

IOPUB_GRACE = 0.2  # seconds a kernel_info's IOPub messages may take before it is asked again


class KernelStartError(NbcellarError):
    """A kernel died, or never answered, while it started: nothing of the run has run."""


def start_failure(error: Exception, kernel_name: str, log: Any) -> KernelStartError:
    """The one line for a kernel that could not start: what happened, the kernel, the last
    line it wrote (``log``: the file its output went to), and what to try."""
    said = ""
    with contextlib.suppress(OSError):
        text = Path(log).read_text(errors="replace")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        said = lines[-1][:300] if lines else ""
    return KernelStartError(
        f"{error} (kernel {kernel_name}){f'; its last words: {said}' if said else ''}; try it "
        "in Jupyter, or see 'jupyter kernelspec list'"
    )


async def wait_until_ready(client: Any, timeout: float | None) -> None:
    """Until the kernel answers on the shell channel and its IOPub is connected (``client``:
    an asynchronous kernel client, its channels started)."""
    deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
    while True:
        msg_id = client.kernel_info()
        reply = await _reply_to(client, msg_id, min(1.0, max(deadline - time.monotonic(), 0.01)))
        if reply is not None and await _idle_after(client, msg_id):
            handle = getattr(client, "_handle_kernel_info_reply", None)  # protocol adaptation
            if handle is not None:
                handle(reply)
            return
        if not await client.is_alive():
            raise KernelStartError("the kernel died while it started")
        if time.monotonic() > deadline:
            raise KernelStartError(f"the kernel did not answer within {timeout:g} s of starting")


async def _reply_to(client: Any, msg_id: str, timeout: float) -> dict[str, Any] | None:
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        try:
            msg: dict[str, Any] = await client.get_shell_msg(timeout=left)
        except queue.Empty:
            return None
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg
    return None


async def _idle_after(client: Any, msg_id: str) -> bool:
    """Whether IOPub says the request ``msg_id`` is done (within IOPUB_GRACE)."""
    end = time.monotonic() + IOPUB_GRACE
    while (left := end - time.monotonic()) > 0:
        try:
            msg = await client.get_iopub_msg(timeout=left)
        except queue.Empty:
            return False
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"].get("execution_state") == "idle"
        ):
            return True
    return False


def stop_now(manager: Any) -> None:
    """Kill a locally started kernel's process group and reap it, so that the manager's own
    shutdown finds it gone at once (nothing is left to flush: the caller made sure)."""
    provisioner = getattr(manager, "provisioner", None)
    process = getattr(provisioner, "process", None)
    if process is None or process.poll() is not None:
        return
    group = getattr(provisioner, "pgid", None)
    with contextlib.suppress(OSError):
        if group:
            os.killpg(group, signal.SIGKILL)
        else:
            process.kill()
    with contextlib.suppress(Exception):
        process.wait(timeout=5)


def notebook_client(nb: Any, **options: Any) -> Any:
    """An nbclient ``NotebookClient`` whose kernel client is ready without the fixed wait."""
    from nbclient import NotebookClient
    from nbclient.util import run_hook, run_sync

    class Client(NotebookClient):
        async def async_start_new_kernel_client(self) -> Any:
            assert self.km is not None
            try:
                self.kc = self.km.client()
                self.kc.start_channels()
                await wait_until_ready(self.kc, self.startup_timeout)
            except Exception:
                await self._async_cleanup_kernel()
                raise
            self.kc.allow_stdin = False
            await run_hook(self.on_notebook_start, notebook=self.nb)
            return self.kc

        start_new_kernel_client = run_sync(async_start_new_kernel_client)

    return Client(nb, **options)
