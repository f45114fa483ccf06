"""Recording a cell where an ipykernel kernel sends its IOPub messages, and sending them again.

Everything a frontend sees of a cell goes out through the kernel session's ``send`` to the IOPub
socket (streams, from the IOPub thread; displays, updates, clears, results, comm and custom
messages, from the cell) or, for forked child processes, through the IOPub thread's pipe. A
:class:`IOPubTap` wraps both once per kernel; while a cell is recorded it keeps, in the order
they went out, every message whose parent is the cell's request: output of child processes and
C code written to file descriptors 1 and 2 included (ipykernel forwards it as stream messages).
A replay sends them again as the new request's, in the same order.
"""

from __future__ import annotations

import contextlib
import fcntl
import struct
import sys
import termios
import threading
import time
from collections.abc import Mapping
from typing import Any

from nbcellar.kernel.outputs import (
    COMM_MESSAGES,
    COMM_REASON,
    NOT_OUTPUTS,
    ResultCapture,
    buffers_of,
    message_of_output,
    output_of_message,
)

FD_DRAIN_SECONDS = 2.0  # at most this long for ipykernel to read what was written to fd 1 and 2


class IOPubTap:
    """Wraps one kernel's IOPub sends; hands the messages of the recorded request over."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.session = kernel.session
        self.thread = kernel.iopub_thread
        self.lock = threading.RLock()
        self.recording: KernelRecorder | None = None
        self._sockets = [
            s for s in (kernel.iopub_socket, self.thread, getattr(self.thread, "socket", None))
            if s is not None
        ]  # fmt: skip
        self._send = self.session.send
        self._pipe = getattr(self.thread, "_handle_pipe_msg", None)

    def install(self) -> None:
        self.session.send = self.send
        if self._pipe is not None:
            self.thread._handle_pipe_msg = self.piped

    def uninstall(self) -> None:
        self.session.__dict__.pop("send", None)
        self.thread.__dict__.pop("_handle_pipe_msg", None)

    def send(self, stream: Any, msg_or_type: Any, *args: Any, **kwargs: Any) -> Any:
        """``Session.send``, keeping a copy of what goes to IOPub for the recorded request."""
        with self.lock:  # (one at a time: what is kept is in the order it goes out)
            msg = self._send(stream, msg_or_type, *args, **kwargs)
            recording = self.recording
            if recording is not None and msg is not None and self._is_iopub(stream):
                buffers = kwargs.get("buffers", args[4] if len(args) > 4 else None)
                recording.message(msg, buffers or msg.get("buffers") or ())
        return msg

    def piped(self, frames: list[Any]) -> Any:
        """A message from a forked child process, on its way to IOPub."""
        assert self._pipe is not None
        with self.lock:
            recording = self.recording
            if recording is not None and frames and frames[0] == self.thread._pipe_uuid:
                with contextlib.suppress(Exception):  # not ours to judge: it is sent as it is
                    _, parts = self.session.feed_identities(frames[1:], copy=True)
                    msg = self.session.deserialize(parts, content=True, copy=True)
                    recording.message(msg, msg.get("buffers") or ())
            return self._pipe(frames)

    def _is_iopub(self, stream: Any) -> bool:
        return any(stream is s for s in self._sockets)


class KernelRecorder:
    """One cell's IOPub messages, recorded through the kernel's :class:`IOPubTap`."""

    def __init__(self, shell: Any, tap: IOPubTap) -> None:
        self.shell = shell
        self.tap = tap
        self.outputs: list[dict[str, Any]] = []
        self.results: list[Any] = []
        self.uncacheable = ""
        self.parent_id: str | None = None
        self._capture = ResultCapture(shell, self, tap.lock)

    def start(self) -> None:
        parent = self.tap.kernel.get_parent("shell") or {}
        self.parent_id = (parent.get("header") or {}).get("msg_id")
        self._capture.install()
        with self.tap.lock:
            self.tap.recording = self

    def message(self, msg: Mapping[str, Any], buffers: Any) -> None:
        """Keep ``msg`` if the cell's request is its parent (called under the tap's lock)."""
        msg_type = str(msg.get("msg_type") or (msg.get("header") or {}).get("msg_type"))
        parent = msg.get("parent_header") or {}
        if self.parent_id is None or parent.get("msg_id") != self.parent_id:
            return
        if msg_type in NOT_OUTPUTS:
            return
        if msg_type in COMM_MESSAGES:
            self.uncacheable = COMM_REASON
        session = self.tap.session
        # As JSON, exactly as it went on the wire (dates as strings, no tuples).
        content = session.unpack(session.pack(msg.get("content") or {}))
        metadata = session.unpack(session.pack(msg.get("metadata") or {}))
        output = output_of_message(msg_type, content, metadata, list(buffers))
        if msg_type == "execute_result" and not self._capture.claim(output):
            # Sent by the cell itself, not by the displayhook: no value behind it, and a run
            # leaves ``_`` as it was; it is replayed as the message it is.
            output = output_of_message("message", {}, metadata, list(buffers))
            output.update(msg_type=msg_type, content=content)
        self.outputs.append(output)

    def stop(self) -> list[dict[str, Any]]:
        if self.tap.recording is self:
            drain_streams()
            with self.tap.lock:
                self.tap.recording = None
            self._capture.uninstall()
        return self.outputs


def drain_streams() -> None:
    """Send what the cell wrote and ipykernel has not sent yet: its buffered streams, and what
    child processes and C code wrote to file descriptors 1 and 2 (ipykernel reads those from
    a pipe in a thread of its own)."""
    deadline = time.monotonic() + FD_DRAIN_SECONDS
    for stream in (sys.stdout, sys.stderr):
        pipe = getattr(stream, "_fid", None)
        if pipe is None or not getattr(stream, "_should_watch", False):
            continue
        while _unread(pipe) and time.monotonic() < deadline:
            time.sleep(0.001)
    # Twice: what ipykernel's reader took from a pipe just now reaches the stream's buffer while
    # the first flush waits for the IOPub thread.
    for _ in range(2):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()


def _unread(fd: int) -> int:
    """Bytes waiting in the pipe ``fd``."""
    try:
        answer = fcntl.ioctl(fd, termios.FIONREAD, struct.pack("i", 0))
    except OSError:
        return 0
    return int(struct.unpack("i", answer)[0])


def sender(kernel: Any, shell: Any) -> Any:
    """A function sending one stored output as an IOPub message of the running request."""
    session, socket = kernel.session, kernel.iopub_socket
    parent = kernel.get_parent("shell")

    def send(output: Mapping[str, Any]) -> None:
        msg_type, content, metadata = message_of_output(output)
        if msg_type == "stream":
            topic = f"stream.{content.get('name')}".encode()
        elif msg_type in ("display_data", "update_display_data", "clear_output"):
            topic = getattr(shell.display_pub, "topic", b"display_data")
        else:
            topic = kernel._topic(msg_type)
        session.send(
            socket, msg_type, content, parent=parent, ident=topic, metadata=metadata,
            buffers=buffers_of(output) or None,
        )  # fmt: skip

    return send


def tap_of(shell: Any) -> IOPubTap | None:
    """The IOPub tap of the shell's kernel, installed on first use (None without a kernel)."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None or getattr(kernel, "iopub_thread", None) is None:
        return None
    if getattr(kernel, "session", None) is None:
        return None
    tap = kernel.__dict__.get("_nbcellar_iopub")
    if not isinstance(tap, IOPubTap):
        tap = IOPubTap(kernel)
        tap.install()
        kernel._nbcellar_iopub = tap
    return tap


def untap(shell: Any) -> None:
    kernel = getattr(shell, "kernel", None)
    tap = None if kernel is None else kernel.__dict__.pop("_nbcellar_iopub", None)
    if isinstance(tap, IOPubTap):
        tap.uninstall()


def recorder_for(shell: Any) -> Any:
    """The recorder for a cell of ``shell``: at the IOPub level in a kernel, else the shell's."""
    from nbcellar.kernel.outputs import ShellRecorder

    tap = tap_of(shell)
    return ShellRecorder(shell) if tap is None else KernelRecorder(shell, tap)


def sender_for(shell: Any) -> Any:
    """How a replay sends a stored output: as an IOPub message in a kernel (None elsewhere)."""
    kernel = getattr(shell, "kernel", None)
    return None if tap_of(shell) is None else sender(kernel, shell)
