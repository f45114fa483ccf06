"""What every benchmark script shares: a line about the machine, and a scratch folder."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
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


def timed(command: Sequence[str], cwd: Path) -> tuple[float, str]:
    """Run ``command`` in ``cwd``: its wall time and what it printed (stdout, then stderr);
    a failure ends the benchmark with what it said."""
    start = time.perf_counter()
    done = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr}")
    return seconds, done.stdout + done.stderr


def side_venv(folder: Path, packages: Sequence[str], command: str) -> Path:
    """A virtual environment of its own for a tool whose pins clash with nbcellar's (made
    with pip on first use, ``packages`` in it); the path of its ``command``."""
    exe = folder / "bin" / command
    if not exe.exists():
        print(f"   making {folder} ({', '.join(packages)}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(folder / "bin" / "pip"), "install", "-q", *packages], check=True)
    return exe


@contextlib.contextmanager
def served_ui(store: Path) -> Iterator[tuple[str, int]]:
    """``nbcellar ui`` over ``store`` on a free port of loopback: its address and process id,
    stopped afterwards."""
    import re

    exe = Path(sys.executable).with_name("nbcellar")
    server = subprocess.Popen(
        [str(exe), "ui", "--store", str(store), "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if not found:
            raise SystemExit(f"nbcellar ui did not start: {line}")
        yield found.group(0), server.pid
    finally:
        server.terminate()
        server.communicate(timeout=30)
