"""Who holds something (a lock, a run in progress): this process, named so that another process
can tell, later, whether it is still there.

An owner is ``host:pid:start``, the start being the process's start time (``/proc``), so a pid
reused by another process is not taken for the owner. On another host nothing can be asked:
there the owner's lease says (see :func:`alive`).
"""

from __future__ import annotations

import os
import socket
import time
from functools import lru_cache

LEASE_SECONDS = 90.0
"""How long a holder on another host is believed without a sign of life (a heartbeat)."""


@lru_cache(maxsize=1)
def _start_of_this_process() -> str:
    return _start_of(os.getpid())


def _start_of(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" where /proc cannot say)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return fields[19].decode() if len(fields) > 19 else ""


def me() -> str:
    """This process, as an owner."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_of_this_process()}"


def describe(owner: str) -> str:
    """An owner for people: ``pid 4242 on host gpu-3``."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    return f"pid {pid} on {'this host' if host == socket.gethostname() else host}"


def alive(owner: str, since: float | None = None) -> bool:
    """Whether the owner may still be there: on this host, its process (the same one, not a
    reused pid); on another, while its lease (renewed at ``since``) has not run out."""
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname():
        return since is None or time.time() - since < LEASE_SECONDS
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return not start or not (now := _start_of(pid)) or now == start


def owned_temporary_prefix(kind: str) -> str:
    """A prefix for a temporary folder of this process (``nbcellar-kernel-4242.``), by which
    :func:`remove_orphans` knows whose it is."""
    return f"nbcellar-{kind}-{os.getpid()}."


def remove_orphans(kind: str) -> None:
    """Remove the temporary folders of ``kind`` whose process is gone (killed before it could
    clean up: socket folders, connection files, kernel logs)."""
    import re
    import shutil
    import tempfile

    pattern = re.compile(rf"nbcellar-{re.escape(kind)}-(\d+)\.")
    try:
        entries = os.scandir(tempfile.gettempdir())
    except OSError:
        return
    with entries:
        for entry in entries:
            found = pattern.match(entry.name)
            if found is None or not entry.is_dir(follow_symlinks=False):
                continue
            try:
                os.kill(int(found.group(1)), 0)
            except ProcessLookupError:
                shutil.rmtree(entry.path, ignore_errors=True)
            except (PermissionError, ValueError):
                continue
