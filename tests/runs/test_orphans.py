"""What a run killed with SIGKILL leaves in the temporary folder goes on the next run."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from nbcellar.owners import owned_temporary_prefix, remove_orphans


def test_a_killed_runs_socket_folder_is_removed_and_a_live_ones_kept() -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    left = Path(tempfile.mkdtemp(prefix=f"nbcellar-kernel-{dead}."))
    (left / "kernel-1.json").write_text("{}")  # a connection file
    mine = Path(tempfile.mkdtemp(prefix=owned_temporary_prefix("kernel")))
    try:
        remove_orphans("kernel")
        assert not left.exists()
        assert mine.exists()
    finally:
        for folder in (left, mine):
            if folder.exists():
                for path in folder.iterdir():
                    path.unlink()
                folder.rmdir()
