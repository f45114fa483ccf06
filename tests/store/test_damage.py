"""Damaged objects are caught without reading gigabytes, refused once found, and healed by
the next write of the same object."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbcellar.store import open_store
from nbcellar.store.blobs import MAP_THRESHOLD, BlobStore, CorruptObject, hash_bytes


def big(fill: int) -> bytes:
    return bytes([fill]) * (MAP_THRESHOLD + 4096)


def keep_times(path: Path, stat: os.stat_result) -> None:
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_large_blob_rewritten_with_its_size_and_mtime_kept_is_caught(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "objects")
    data = big(1)
    key = blobs.put(data)
    signature = blobs.signature(key)
    path = blobs.path(key)
    before = path.stat()
    with open(path, "r+b") as handle:  # bit rot, or a tool that keeps modification times
        handle.seek(100)
        handle.write(b"\x02")
    keep_times(path, before)
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    with pytest.raises(CorruptObject, match="does not match its hash"):
        blobs.load_buffer(key, len(data), signature)


def test_two_same_size_blobs_swapped_are_caught(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "objects")
    a, b = big(3), big(4)
    key_a, key_b = blobs.put(a), blobs.put(b)
    signature_a = blobs.signature(key_a)
    path_a, path_b = blobs.path(key_a), blobs.path(key_b)
    stat_a = path_a.stat()
    swap = path_a.with_name("swap")
    os.rename(path_a, swap)
    os.rename(path_b, path_a)
    os.rename(swap, path_b)
    keep_times(path_a, stat_a)
    with pytest.raises(CorruptObject):
        blobs.load_buffer(key_a, len(a), signature_a)


def test_what_verify_found_damaged_is_refused_until_written_again(tmp_path: Path) -> None:
    store = open_store(tmp_path / ".nbcellar")
    payload = b"x" * 200_000
    store.save_namespace({"blob": payload})
    store.flush()
    damaged = max(store.blobs.iter_keys(), key=store.blobs.size)
    path = store.blobs.path(damaged)
    original = path.read_bytes()
    path.write_bytes(original[:-10] + bytes([original[-10] ^ 0xFF]) + original[-9:])
    report = store.verify()
    assert [d.key for d in report.damaged] == [damaged]
    assert not store.blobs.has(damaged)
    with pytest.raises(CorruptObject, match="found by 'nbcellar store verify'"):
        store.blobs.read(damaged, verify=False)
    # The same object written again (a cell recomputed) replaces the damaged file.
    store.blobs.put_parts([original], damaged)
    assert store.blobs.has(damaged)
    assert hash_bytes(store.blobs.read(damaged)) == damaged
    assert store.verify().ok
    store.close()


def test_verify_streams_large_objects(tmp_path: Path) -> None:
    import tracemalloc

    import numpy as np

    store = open_store(tmp_path / ".nbcellar")
    store.save_namespace({"a": np.ones(8_000_000)})  # 64 MB in one object
    store.flush()
    tracemalloc.start()
    try:
        assert store.verify().ok
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        store.close()
    assert peak < 8_000_000  # never the 64 MB object in memory
