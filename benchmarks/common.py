"""What every benchmark script shares: a line about the machine, and a scratch folder."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def machine() -> str:
    """Platform, CPU model, core count and RAM, for the top of a benchmark's output."""
    ram = "?"
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{platform.platform()}, {cpu}, {os.cpu_count()} CPUs, {ram} RAM"


@contextlib.contextmanager
def scratch(parent: str | None, prefix: str = "nbcellar-bench-") -> Iterator[Path]:
    """A temporary folder under ``parent`` (or the system's), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
