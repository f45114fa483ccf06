"""Finding the store: --store, $NBCELLAR_STORE, the nearest .nbcellar/ above, else here."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from nbcellar.store import open_store
from nbcellar.store.index import SCHEMA_VERSION, StoreVersionError
from nbcellar.store.location import find_store_root


def test_walks_up_like_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBCELLAR_STORE", raising=False)
    (tmp_path / ".nbcellar").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_store_root() == tmp_path / ".nbcellar"


def test_created_on_first_use_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBCELLAR_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    store = open_store()
    assert store.root == tmp_path / ".nbcellar"
    # (Beside the objects, the id of the index they belong to; no object yet.)
    assert [p.name for p in (tmp_path / ".nbcellar" / "objects").iterdir()] == ["index-id"]
    store.save_namespace({"x": list(range(100_000))})
    assert {"index.sqlite", "objects", "runs"} <= {p.name for p in store.root.iterdir()}


def test_environment_variable_and_explicit_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBCELLAR_STORE", str(tmp_path / "from-env"))
    assert find_store_root() == tmp_path / "from-env"
    assert find_store_root(tmp_path / "explicit") == tmp_path / "explicit"


def test_index_is_sqlite_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    store.close()
    db = sqlite3.connect(tmp_path / "s" / "index.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    assert int(version) == SCHEMA_VERSION


def test_store_from_a_newer_nbcellar_is_refused(tmp_path: Path) -> None:
    open_store(tmp_path / "s").close()
    db = sqlite3.connect(tmp_path / "s" / "index.sqlite")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreVersionError, match="schema version 99 is newer"):
        open_store(tmp_path / "s")


def test_a_version_1_store_is_migrated_and_keeps_its_snapshots(tmp_path: Path) -> None:
    from nbcellar.store.index import MIGRATIONS

    path = tmp_path / "old" / "index.sqlite"
    path.parent.mkdir()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    MIGRATIONS[1](db)
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.execute("INSERT INTO snapshots VALUES ('s1', 0, 'old', NULL, 0)")
    db.execute("INSERT INTO variables VALUES ('s1', 'm', NULL, 'module', 0, 'json', NULL)")
    db.close()
    store = open_store(tmp_path / "old")
    assert store.index.schema_version == SCHEMA_VERSION
    import json

    assert store.load_namespace("s1") == {"m": json}
    snap = store.save_namespace({"x": [1, 2]})
    assert store.load_namespace(snap.id) == {"x": [1, 2]}


def test_many_processes_opening_a_new_store_at_once(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    code = (
        "import sys, time\nfrom nbcellar.store import open_store\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"  # all open at the same instant
        "open_store(sys.argv[1]).close()"
    )
    start = str(time.time() + 3.0)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "s"), start], stderr=subprocess.PIPE
        )
        for _ in range(8)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
