"""Looking after a store: what it holds, whether every blob is intact, and garbage collection."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from nbcellar.store.blobs import BlobStore, CorruptObject, hash_bytes
from nbcellar.store.index import Index
from nbcellar.store.values import is_value_blob, parse

STALE_PENDING_SECONDS = 24 * 3600
STALE_TEMP_SECONDS = 3600


@dataclass(frozen=True)
class StoreInfo:
    root: str
    schema_version: int
    snapshots: int
    variables: int
    values: int
    blobs: int
    bytes_on_disk: int  # (temporary files and run folders included)
    temporary_bytes: int = 0  # being written, or left by writers that stopped midway
    runs_bytes: int = 0  # run folders: executed notebooks, artifacts, logs, kept sources
    runs: int = 0


@dataclass(frozen=True)
class Damage:
    key: str
    problem: str
    used_by: tuple[tuple[str, str], ...]  # (snapshot id, variable name)


@dataclass(frozen=True)
class VerifyReport:
    checked: int
    checked_bytes: int
    damaged: tuple[Damage, ...]
    unreferenced: int

    @property
    def ok(self) -> bool:
        return not self.damaged


@dataclass(frozen=True)
class GcReport:
    removed: int  # blob files and values kept inline in the index
    freed_bytes: int
    kept: int  # blob files
    removed_keys: tuple[str, ...] = field(default=(), repr=False)
    # (for a shared store collected with remote=True) objects removed from it, bytes, kept
    shared_removed: int = 0
    shared_freed_bytes: int = 0
    shared_kept: int = 0


def info(blobs: BlobStore, index: Index) -> StoreInfo:
    with index.read() as db:
        counts = [
            db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("snapshots", "variables", "stored_values")
        ]
    keys = list(blobs.iter_keys())
    index_files = [index.path, index.path.with_name(index.path.name + "-wal")]
    size = sum(blobs.size(k) for k in keys) + sum(
        p.stat().st_size for p in index_files if p.exists()
    )
    snapshots, variables, values = counts
    runs_bytes, runs_count = _runs_size(blobs.root.parent / "runs")
    temporary = 0
    if blobs.tmp.is_dir():
        for path in blobs.tmp.iterdir():
            try:
                temporary += path.stat().st_size
            except FileNotFoundError:  # renamed into place meanwhile
                continue
    return StoreInfo(
        str(blobs.root.parent), index.schema_version, snapshots, variables, values, len(keys),
        size + temporary + runs_bytes, temporary, runs_bytes, runs_count,
    )  # fmt: skip


def _runs_size(runs: Path) -> tuple[int, int]:
    """The bytes the run folders hold (each file once, however many links it has) and how
    many runs have a folder."""
    if not runs.is_dir():
        return 0, 0
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in runs.rglob("*"):
        try:
            stat = path.lstat()
        except FileNotFoundError:
            continue
        if not path.is_file() or (stat.st_dev, stat.st_ino) in seen:
            continue
        seen.add((stat.st_dev, stat.st_ino))
        total += stat.st_size
    count = sum(1 for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))
    return total, count


def remove_stale_temporaries(blobs: BlobStore) -> int:
    """Remove what writers that stopped midway left in ``objects/tmp`` (a killed kernel's
    spill files: hundreds of MB); the bytes freed."""
    freed = 0
    for stale in blobs.stale_temporaries(time.time() - STALE_TEMP_SECONDS):
        try:
            size = stale.stat().st_size
            stale.unlink()
        except FileNotFoundError:
            continue
        freed += size
    return freed


def _referenced(index: Index) -> tuple[set[str], dict[str, list[tuple[str, str]]]]:
    """Every blob some snapshot needs, and which (snapshot, variable) needs each value."""
    users: dict[str, list[tuple[str, str]]] = {}
    db = index.db
    for snapshot_id, name, key in db.execute(
        "SELECT snapshot_id, name, value_key FROM variables WHERE value_key IS NOT NULL"
    ):
        users.setdefault(key, []).append((snapshot_id, name))
    needed = set(users)
    if users:
        for value_key, blob_key in db.execute("SELECT value_key, blob_key FROM value_blobs"):
            if value_key in users:
                needed.add(blob_key)
                users.setdefault(blob_key, []).extend(users[value_key])
    return needed, users


def referenced_blobs(index: Index) -> set[str]:
    """Every blob (and value) some snapshot of the index needs."""
    with index.read():
        return _referenced(index)[0]


def verify(blobs: BlobStore, index: Index) -> VerifyReport:
    """Hash every blob; report the damaged and missing ones with the variables they hold."""
    with index.read() as db:
        needed, users = _referenced(index)
        signatures = dict(db.execute("SELECT key, signature FROM blobs").fetchall())
        inline = db.execute("SELECT key, data FROM stored_values WHERE data IS NOT NULL").fetchall()
    damaged: list[Damage] = []
    for key, data in inline:
        needed.discard(key)
        if hash_bytes(data) != key:
            problem = "inline value does not match its hash"
            damaged.append(Damage(key, problem, tuple(users.get(key, ()))))
    present: set[str] = set(blobs.iter_keys())
    checked = checked_bytes = 0
    refreshed: list[tuple[int, str]] = []
    for key in sorted(present):
        try:
            size = blobs.size(key)
            intact = blobs.intact(key)  # (read through a map: never the whole file in memory)
            head = blobs.head(key, 16)
        except OSError as exc:
            damaged.append(Damage(key, f"unreadable: {exc.strerror}", tuple(users.get(key, ()))))
            continue
        checked += 1
        checked_bytes += size
        if not intact:
            damaged.append(
                Damage(key, "content does not match its hash", tuple(users.get(key, ())))
            )
            continue
        if is_value_blob(head):  # (a pickle stream: small; its buffers are blobs of their own)
            try:
                parse(blobs.path(key).read_bytes(), key)
            except (CorruptObject, ValueError) as exc:
                damaged.append(Damage(key, f"bad value header: {exc}", tuple(users.get(key, ()))))
                continue
        signature = blobs.signature(key)
        if key in signatures and signatures[key] != signature:
            refreshed.append((signature, key))
    for key in sorted(needed - present):
        damaged.append(Damage(key, "missing from the store", tuple(users.get(key, ()))))
    if refreshed:  # intact blobs whose files were copied or touched: trust them again
        with index.write() as db:
            db.executemany("UPDATE blobs SET signature = ? WHERE key = ?", refreshed)
    # Loads refuse what was found damaged (until a write of the same object replaces it); what
    # was listed and is intact now (put back from a backup) is trusted again.
    bad = {d.key for d in damaged if d.key in present}
    listed = blobs.damaged()
    if bad or listed:
        blobs.set_damaged(bad | {k for k in listed if k not in present or k in bad})
    return VerifyReport(checked, checked_bytes, tuple(damaged), len(present - needed))


def _writer_alive(writer: str, since: float) -> bool:
    if time.time() - since > STALE_PENDING_SECONDS:
        return False
    host, _, rest = writer.partition(":")
    if host != socket.gethostname():
        return True
    pid = int(rest.partition(":")[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def gc(blobs: BlobStore, index: Index) -> GcReport:
    """Remove every blob no snapshot needs and no live writer is writing.

    Runs inside one write transaction: a writer registers the blobs it is about to write before
    writing them, so it either registered first (and is protected) or waits and then finds the
    blob gone and writes it again.
    """
    removed: list[str] = []
    freed = 0
    with index.write() as db:
        needed, _ = _referenced(index)
        needed -= {k for (k,) in db.execute("SELECT key FROM stored_values WHERE data IS NOT NULL")}
        pending = db.execute("SELECT blob_key, writer, since FROM pending").fetchall()
        dead = {w for _, w, since in pending if not _writer_alive(w, since)}
        needed |= {key for key, writer, _ in pending if writer not in dead}
        db.executemany("DELETE FROM pending WHERE writer = ?", [(w,) for w in dead])
        kept = 0
        for key in list(blobs.iter_keys()):
            if key in needed:
                kept += 1
                continue
            freed += blobs.delete(key)
            removed.append(key)
        unused = (
            "FROM stored_values WHERE key NOT IN "
            "(SELECT value_key FROM variables WHERE value_key IS NOT NULL)"
        )
        inline_count, inline_bytes = db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) {unused} AND data IS NOT NULL"
        ).fetchone()
        db.execute(f"DELETE {unused}")
        db.execute("DELETE FROM blobs WHERE key NOT IN (SELECT key FROM stored_values) "
                   "AND key NOT IN (SELECT blob_key FROM value_blobs)")  # fmt: skip
        from nbcellar.runs.records import unused_sources

        for source in unused_sources(blobs.root.parent / "runs"):
            try:
                freed += source.stat().st_size
                source.unlink()
            except FileNotFoundError:
                continue
        freed += remove_stale_temporaries(blobs)
    return GcReport(len(removed) + inline_count, freed + inline_bytes, kept, tuple(removed))
