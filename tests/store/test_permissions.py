"""One policy for everything a store writes: private by default, the group's when shared."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nbcellar.store import open_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def objects(root: Path) -> list[Path]:
    return [p for p in (root / "objects").glob("??/*") if p.is_file()]


def test_a_new_store_lets_no_one_else_in(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = open_store(tmp_path / "project" / ".nbcellar")
        store.save_namespace({"x": list(range(1000)), "y": b"\x00" * 300_000})
        store.close()
    finally:
        os.umask(old)
    root = tmp_path / "project" / ".nbcellar"
    assert mode(root) == 0o700  # the index, run folders and objects inside are not reachable
    assert objects(root)
    assert all(mode(p) == 0o600 for p in objects(root))


def test_a_store_folder_shared_with_a_group_writes_objects_the_group_reads(
    tmp_path: Path,
) -> None:
    root = tmp_path / ".nbcellar"
    root.mkdir()
    root.chmod(0o2770)
    store = open_store(root)
    store.save_namespace({"x": list(range(1000)), "y": b"\x01" * 300_000})
    store.close()
    assert objects(root)
    assert all(mode(p) == 0o660 for p in objects(root))
