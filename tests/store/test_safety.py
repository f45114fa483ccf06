"""Damage, crashes and concurrency: the store stays readable and tells what it lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli
from nbcellar.store import RestoreWarning, Store, open_store
from nbcellar.store.values import parse

pytestmark = pytest.mark.slow


def buffer_blob(store: Store, variable: str, snapshot_id: str) -> Path:
    key = store.snapshot(snapshot_id)[variable].value_key
    assert key is not None
    buffers, _ = parse(store.blobs.read(key), key)
    return store.blobs.path(buffers[0][0])


def flip_a_bit(path: Path, offset: int, keep_mtime: bool = False) -> None:
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ 0x10]))
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def damaged_namespace(store: Store) -> str:
    rng = np.random.default_rng(0)
    snap = store.save_namespace(
        {
            "good": rng.random(300_000),
            "bad": rng.random(300_000),
            "small": list(range(3000)),  # a value file of its own, but not memory-mapped
            "tiny": {"k": 1},  # kept inline in the index
        }
    )
    return snap.id


def test_flipped_bit_in_a_large_blob_names_the_variable(store: Store) -> None:
    snapshot_id = damaged_namespace(store)
    flip_a_bit(buffer_blob(store, "bad", snapshot_id), 1000)
    with pytest.warns(RestoreWarning, match=r"^bad: damaged in the store"):
        values = store.load_namespace(snapshot_id)
    assert set(values) == {"good", "small", "tiny"}
    report = store.verify()
    assert not report.ok
    assert [d.used_by for d in report.damaged] == [((snapshot_id, "bad"),)]


def test_flipped_bit_in_a_small_value_is_caught_by_its_hash(store: Store) -> None:
    snapshot_id = damaged_namespace(store)
    key = store.snapshot(snapshot_id)["small"].value_key
    assert key is not None
    path = store.blobs.path(key)
    flip_a_bit(path, path.stat().st_size - 5, keep_mtime=True)
    with pytest.warns(RestoreWarning, match=r"^small: damaged"):
        values = store.load_namespace(snapshot_id)
    assert set(values) == {"good", "bad", "tiny"}


def test_damaged_inline_value_is_caught_by_its_hash(store: Store) -> None:
    snapshot_id = damaged_namespace(store)
    key = store.snapshot(snapshot_id)["tiny"].value_key
    with store.index.write() as db:
        (data,) = db.execute("SELECT data FROM stored_values WHERE key = ?", (key,)).fetchone()
        damaged = data[:-3] + bytes([data[-3] ^ 1]) + data[-2:]
        db.execute("UPDATE stored_values SET data = ? WHERE key = ?", (damaged, key))
    with pytest.warns(RestoreWarning, match=r"^tiny: damaged"):
        values = store.load_namespace(snapshot_id)
    assert set(values) == {"good", "bad", "small"}
    report = store.verify()
    assert [d.used_by for d in report.damaged] == [((snapshot_id, "tiny"),)]


def test_verify_catches_damage_that_kept_the_file_time(store: Store) -> None:
    snapshot_id = damaged_namespace(store)
    flip_a_bit(buffer_blob(store, "bad", snapshot_id), 4096, keep_mtime=True)
    assert not store.verify().ok


def test_truncated_and_missing_blobs(store: Store) -> None:
    snapshot_id = damaged_namespace(store)
    bad = buffer_blob(store, "bad", snapshot_id)
    with open(bad, "r+b") as handle:
        handle.truncate(100)
    buffer_blob(store, "good", snapshot_id).unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = store.load_namespace(snapshot_id)
    assert set(values) == {"small", "tiny"}
    messages = sorted(str(w.message) for w in caught)
    assert "expected 2400000" in messages[0]
    assert "missing from the store" in messages[1]
    problems = sorted(d.problem for d in store.verify().damaged)
    assert problems == ["content does not match its hash", "missing from the store"]


def test_store_verify_command_exits_1_naming_the_variable(store: Store) -> None:
    snapshot_id = damaged_namespace(store)
    flip_a_bit(buffer_blob(store, "bad", snapshot_id), 10)
    result = CliRunner().invoke(cli, ["store", "verify", "--store", str(store.root)])
    assert result.exit_code == 1
    assert f"bad in snapshot {snapshot_id}" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("nbcellar: error: 1 damaged")


WRITER = """
import sys
import numpy as np
from nbcellar.store import open_store

store = open_store(sys.argv[1])
shared = np.arange(400_000, dtype=float)
first, count = int(sys.argv[2]), int(sys.argv[3])
for i in range(first, first + count):
    ns = {"i": i, "arr": np.full(300_000, float(i)), "shared": shared,
          "lst": list(range(i, i + 500)), "text": "x" * (i % 7)}
    snap = store.save_namespace(ns, label=str(i))
    print(snap.id, flush=True)
"""


def check_every_snapshot(store_dir: Path) -> int:
    """Every recorded snapshot loads and holds exactly what its writer saved."""
    store = open_store(store_dir)
    snapshots = store.snapshots()
    for snap in snapshots:
        i = int(snap.label)
        values = store.load_namespace(snap.id)
        assert values["i"] == i
        assert values["lst"] == list(range(i, i + 500))
        assert float(values["arr"][-1]) == float(i)
        assert float(values["shared"][-1]) == 399_999.0
    report = store.verify()
    assert report.ok, report.damaged
    store.close()
    return len(snapshots)


@pytest.mark.long  # (slower: the default run stays within its ten minutes)
def test_writer_killed_at_random_points_leaves_a_sound_store(tmp_path: Path) -> None:
    store_dir = tmp_path / ".nbcellar"
    rng = random.Random(20261121)
    for attempt in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(store_dir), str(attempt * 1000), "1000"],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert check_every_snapshot(store_dir) > 0
    store = open_store(store_dir)
    report = store.gc()  # orphans of killed writers go; nothing reachable does
    assert check_every_snapshot(store_dir) == len(store.snapshots())
    assert report.kept > 0


def test_four_processes_saving_at_once_lose_nothing(tmp_path: Path) -> None:
    store_dir = tmp_path / ".nbcellar"
    open_store(store_dir).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(store_dir), str(w * 100), "6"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    printed = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        printed += out.split()
    assert len(printed) == 24
    assert check_every_snapshot(store_dir) == 24
    store = open_store(store_dir)
    assert {s.id for s in store.snapshots()} == set(printed)


def test_gc_frees_what_no_snapshot_uses_and_keeps_the_rest(store: Store) -> None:
    shared = np.arange(300_000.0)
    rng = np.random.default_rng(5)
    old = store.save_namespace({"unique": rng.random(300_000), "shared": shared})
    new = store.save_namespace({"other": rng.random(300_000), "shared": shared})
    assert store.gc().removed == 0
    store.delete_snapshot(old.id)
    report = store.gc()
    assert report.freed_bytes >= 300_000 * 8
    assert report.removed == 2  # the unique array's buffer and its value
    values = store.load_namespace(new.id)
    np.testing.assert_array_equal(values["shared"], shared)
    assert store.verify().ok
    assert store.gc().removed == 0


def test_gc_under_a_concurrent_writer_never_removes_anything_reachable(tmp_path: Path) -> None:
    store_dir = tmp_path / ".nbcellar"
    store = open_store(store_dir)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store_dir), "0", "25"], stdout=subprocess.DEVNULL
    )
    runs = 0
    while writer.poll() is None:
        for snap in store.snapshots()[:-3]:
            store.delete_snapshot(snap.id)  # churn: give gc something to collect
        store.gc()
        runs += 1
    assert writer.returncode == 0
    assert runs > 1
    store.gc()
    assert check_every_snapshot(store_dir) >= 3
