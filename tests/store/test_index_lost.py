"""A store knows it had an index: one lost, damaged or swapped is one clear error, and
nothing is changed (an empty index in its place would let gc delete every object)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli
from nbcellar.store import StoreIndexError, open_store


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    root = tmp_path / ".nbcellar"
    store = open_store(root)
    store.save_namespace({"x": list(range(100)), "y": b"z" * 300_000})
    store.close()
    return root


def objects(root: Path) -> list[str]:
    return sorted(str(p) for p in (root / "objects").rglob("*") if p.is_file())


def damage(root: Path, how: str, other: Path) -> None:
    index = root / "index.sqlite"
    for extra in ("-wal", "-shm"):
        Path(f"{index}{extra}").unlink(missing_ok=True)
    if how == "deleted":
        index.unlink()
    elif how == "truncated":
        index.write_bytes(b"")
    elif how == "random bytes":
        index.write_bytes(os.urandom(8192))
    elif how == "another store's":
        open_store(other).close()
        shutil.copy(other / "index.sqlite", index)


@pytest.mark.parametrize("how", ["deleted", "truncated", "random bytes", "another store's"])
def test_a_lost_or_foreign_index_is_one_clear_error_and_nothing_changes(
    filled: Path, tmp_path: Path, how: str
) -> None:
    damage(filled, how, tmp_path / "other" / ".nbcellar")
    before = objects(filled)
    with pytest.raises(StoreIndexError, match="nothing was changed"):
        open_store(filled)
    result = CliRunner().invoke(cli, ["store", "gc", "--store", str(filled)])
    assert result.exit_code != 0
    assert result.output.startswith("nbcellar: error: "), result.output
    assert len(result.output.strip().splitlines()) == 1
    assert objects(filled) == before  # not one object deleted


def test_a_store_still_opens_as_it_was(filled: Path) -> None:
    store = open_store(filled)
    assert store.info().snapshots == 1
    store.close()


def test_a_read_only_store_is_one_clear_error(filled: Path, tmp_path: Path) -> None:
    import subprocess

    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a read-only mount needs root and mount(8)")
    view = tmp_path / "read-only"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(filled), str(view)], check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        with pytest.raises(StoreIndexError, match="is read-only here"):
            open_store(view)
    finally:
        if subprocess.run(["umount", str(view)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(view)], check=False)
            pytest.fail("the read-only store was still held open after the error")
