"""The SQLite index of a store: snapshots, their variables, stored values and blobs.

WAL mode lets readers work while one process writes; every write is one short transaction.
The schema carries a version; :data:`MIGRATIONS` brings an older store up to date when opened,
and a store written by a newer nbcellar is refused rather than misread.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from nbcellar.errors import NbcellarError

SCHEMA_VERSION = 4


class StoreVersionError(NbcellarError):
    """The store was written by a newer nbcellar than this one."""


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run several statements inside the caller's transaction (executescript would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _create_v1(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE IF NOT EXISTS snapshots (
            id TEXT PRIMARY KEY,
            created REAL NOT NULL,
            label TEXT NOT NULL DEFAULT '',
            parent TEXT,
            nbytes INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE IF NOT EXISTS variables (
            snapshot_id TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            value_key TEXT,
            type_name TEXT NOT NULL,
            nbytes INTEGER NOT NULL DEFAULT 0,
            module TEXT,
            unserializable TEXT,
            PRIMARY KEY (snapshot_id, name)
        );
        CREATE INDEX IF NOT EXISTS variables_by_value ON variables(value_key);
        CREATE TABLE IF NOT EXISTS stored_values (
            key TEXT PRIMARY KEY,
            nbytes INTEGER NOT NULL,
            names TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS value_blobs (
            value_key TEXT NOT NULL REFERENCES stored_values(key) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            blob_key TEXT NOT NULL,
            PRIMARY KEY (value_key, position)
        );
        CREATE INDEX IF NOT EXISTS value_blobs_by_blob ON value_blobs(blob_key);
        CREATE TABLE IF NOT EXISTS blobs (
            key TEXT PRIMARY KEY,
            nbytes INTEGER NOT NULL,
            signature INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS pending (
            blob_key TEXT NOT NULL,
            writer TEXT NOT NULL,
            since REAL NOT NULL
        );
        CREATE INDEX IF NOT EXISTS pending_by_writer ON pending(writer);
        """,
    )


def _inline_values_v2(db: sqlite3.Connection) -> None:
    """Small values live in the index itself (one row instead of one file each)."""
    db.execute("ALTER TABLE stored_values ADD COLUMN data BLOB")


def _records_and_locks_v3(db: sqlite3.Connection) -> None:
    """Records that upper layers keep (cache entries, run records) and named locks."""
    _run_script(
        db,
        """
        CREATE TABLE IF NOT EXISTS records (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            snapshot_id TEXT REFERENCES snapshots(id) ON DELETE SET NULL,
            payload BLOB NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (kind, key)
        );
        CREATE TABLE IF NOT EXISTS locks (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            since REAL NOT NULL
        )
        """,
    )


def _records_by_time_v4(db: sqlite3.Connection) -> None:
    """Records found by when they were last written (what changed since a reader last looked:
    the dashboard's catalog of runs), without reading their payloads."""
    db.execute("CREATE INDEX IF NOT EXISTS records_by_time ON records(kind, created, key)")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _create_v1,
    2: _inline_values_v2,
    3: _records_and_locks_v3,
    4: _records_by_time_v4,
}
"""``MIGRATIONS[n]`` takes a store at version n - 1 (0: empty) to version n."""


class Index:
    """One connection to ``index.sqlite``; cheap to open, one per process and thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
        try:
            # Switching a new database to WAL takes a lock that SQLite's busy timeout does not
            # wait for: two processes opening a fresh store at once would see "database is
            # locked".
            _retry_while_locked(lambda: self.db.execute("PRAGMA journal_mode=WAL"))
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except BaseException:
            self.db.close()  # (not left open until the error is forgotten)
            raise

    def _migrate(self) -> None:
        with self.write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"{self.path}: store schema version {version} is newer than this nbcellar "
                    f"understands ({SCHEMA_VERSION}); upgrade nbcellar"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](db)
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once so concurrent writers queue instead of failing."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read snapshot of the index."""
        self.db.execute("BEGIN")
        try:
            yield self.db
        finally:
            self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    @property
    def schema_version(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])


def now() -> float:
    return time.time()


def _retry_while_locked(action: Callable[[], object], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    delay = 0.01
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
