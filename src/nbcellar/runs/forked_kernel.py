"""The process jupyter_client starts for a kernel forked by :mod:`nbcellar.runs.forkserver`.

Run as ``python -I -S forked_kernel.py SOCKET ARGV...`` (standard library only, so it starts in
a few milliseconds): it hands its standard streams, working folder, environment and the
kernel's command to the fork server, which forks a kernel from a process that imported the
kernel's machinery once. This process then stands for the kernel towards jupyter_client:
signals it receives go to the kernel's process group, it ends with the kernel's exit status,
and when it is killed the kernel notices (its end of the connection closes) and ends too. When
the process that started it goes away, it stops the kernel and ends.
"""

import contextlib
import json
import os
import select
import signal
import socket
import struct
import sys
import time

FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def main(argv: list[str]) -> int:
    address, command = argv[0], argv[1:]
    parent = os.getppid()
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + 60
    while True:  # the server may still be importing what it preloads
        try:
            connection.connect(address)
            break
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            if time.monotonic() > deadline:
                sys.stderr.write(f"nbcellar: no kernel fork server at {address} ({exc})\n")
                return 1
            time.sleep(0.01)
    request = json.dumps({"argv": command, "cwd": os.getcwd(), "env": dict(os.environ)})
    data = request.encode()
    socket.send_fds(connection, [struct.pack("!I", len(data)) + data], [0, 1, 2])
    received = b""

    def line(timeout: float | None) -> bytes | None:
        """The next line from the server (b"" once it is closed), or None after ``timeout``."""
        nonlocal received
        while b"\n" not in received:
            if not select.select([connection], [], [], timeout)[0]:
                return None
            chunk = connection.recv(4096)
            if not chunk:
                return b""
            received += chunk
        first, received = received.split(b"\n", 1)
        return first

    started = (line(None) or b"").split()
    if len(started) != 2 or started[0] != b"pid":
        sys.stderr.write("nbcellar: the kernel fork server could not start the kernel\n")
        return 1
    kernel = int(started[1])

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):  # already gone
            os.killpg(kernel, signum)

    for name in FORWARDED:
        signal.signal(getattr(signal, name), forward)
    while True:
        said = line(1.0)
        if said is None:
            if os.getppid() != parent:  # whoever started us is gone: so is the kernel
                forward(signal.SIGKILL, None)
                return 1
            continue
        if not said:  # the kernel and the server both let go: the kernel ended
            return 0
        words = said.split()
        if len(words) == 2 and words[0] == b"exit":
            return int(words[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
