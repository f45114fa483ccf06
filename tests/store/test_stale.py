"""What writers that stopped midway leave behind is counted, then cleaned on a later open."""

from __future__ import annotations

import os
import time
from pathlib import Path

from nbcellar.store import open_store


def test_a_killed_writers_spill_file_is_counted_then_removed(tmp_path: Path) -> None:
    root = tmp_path / ".nbcellar"
    open_store(root).close()
    tmp = root / "objects" / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    old, fresh = tmp / "spill.dead", tmp / "spill.writing"
    old.write_bytes(b"x" * 100_000)
    fresh.write_bytes(b"y" * 50_000)
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    store = open_store(root)  # the next open: what a writer left an hour ago goes
    info = store.info()
    store.close()
    assert not old.exists()
    assert fresh.exists()  # (it may still be being written)
    assert info.temporary_bytes == 50_000
