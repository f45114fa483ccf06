"""Saving namespaces: incremental writes, unserializable values, modules, selection."""

from __future__ import annotations

import io
import shutil
import socket
import sqlite3
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nbcellar.store import RestoreWarning, Store


class Unpicklable:
    def __reduce__(self) -> tuple[object, ...]:
        raise RuntimeError("refuses to be pickled")


def test_second_identical_save_writes_nothing(store: Store) -> None:
    ns = {"data": np.random.default_rng(0).random(200_000), "meta": {"k": [1, 2]}}
    first = store.save_namespace(ns)
    second = store.save_namespace(ns)
    assert first.written_bytes > ns["data"].nbytes
    assert second.written_bytes == 0
    assert {v.value_key for v in first.variables} == {v.value_key for v in second.variables}


def test_changing_one_small_variable_writes_only_it(store: Store) -> None:
    ns = {"data": np.random.default_rng(0).random(200_000), "small": 1}
    store.save_namespace(ns)
    ns["small"] = 2
    snap = store.save_namespace(ns)
    assert 0 < snap.written_bytes < 1000
    assert store.load_namespace(snap.id)["small"] == 2


def test_in_place_mutation_is_seen_without_a_hint(store: Store) -> None:
    data = np.zeros(200_000)
    store.save_namespace({"data": data})
    data[123] = 1.0
    snap = store.save_namespace({"data": data})
    assert store.load_namespace(snap.id)["data"][123] == 1.0


def test_changed_hint_skips_unchanged_variables(store: Store) -> None:
    data = np.zeros(200_000)
    ns = {"data": data, "small": 1}
    first = store.save_namespace(ns)
    ns["small"] = 5
    snap = store.save_namespace(ns, changed=["small"], parent=first.id)
    assert snap.parent == first.id
    assert snap["data"].value_key == first["data"].value_key
    assert store.load_namespace(snap.id)["small"] == 5


def test_changed_hint_never_reuses_a_rebound_name(store: Store) -> None:
    ns = {"data": np.zeros(10), "small": 1}
    store.save_namespace(ns)
    ns["data"] = np.ones(10)  # rebound although the caller forgot to say so
    snap = store.save_namespace(ns, changed=["small"])
    np.testing.assert_array_equal(store.load_namespace(snap.id)["data"], np.ones(10))


def test_changed_hint_keeps_groups_whole(store: Store) -> None:
    items = [1]
    ns = {"a": items, "b": items}
    store.save_namespace(ns)
    ns["b"] = items  # same object, still aliased
    items.append(2)
    snap = store.save_namespace(ns, changed=["a"])
    values = store.load_namespace(snap.id)
    assert values["a"] is values["b"]
    assert values["b"] == [1, 2]


def test_unserializable_values_are_recorded_and_the_rest_saved(
    store: Store, tmp_path: Path
) -> None:
    handle = open(tmp_path / "f.txt", "w")  # noqa: SIM115
    sock = socket.socket()
    ns = {
        "gen": (i for i in range(3)),
        "lock": threading.Lock(),
        "conn": sqlite3.connect(":memory:"),
        "file": handle,
        "sock": sock,
        "weird": Unpicklable(),
        "ok": [1, 2, 3],
        "np": np,
        "io": io,
    }
    try:
        snap = store.save_namespace(ns)
    finally:
        handle.close()
        sock.close()
    reasons = snap.unserializable
    assert set(reasons) == {"gen", "lock", "conn", "file", "sock", "weird"}
    assert "refuses to be pickled" in reasons["weird"]
    assert snap["conn"].type_name == "sqlite3.Connection"
    assert snap["np"].module == "numpy"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = store.load_namespace(snap.id)
    assert values["ok"] == [1, 2, 3]
    assert values["np"] is np
    assert values["io"] is io
    assert "gen" not in values
    assert {str(w.message).split(":")[0] for w in caught} == set(reasons)
    assert all(w.category is RestoreWarning for w in caught)


def test_load_a_subset_of_names(store: Store) -> None:
    snap = store.save_namespace({"a": 1, "b": 2, "c": 3})
    assert store.load_namespace(snap.id, ["a", "c"]) == {"a": 1, "c": 3}
    restored = store.restore(snap.id, ["a", "zzz"])
    assert restored.values == {"a": 1}
    assert restored.missing == {"zzz": "not in this snapshot"}


def test_dunder_names_are_not_saved(store: Store) -> None:
    snap = store.save_namespace({"__name__": "__main__", "__builtins__": {}, "x": 1})
    assert snap.names == ("x",)


def test_snapshots_are_listed_in_order(store: Store) -> None:
    ids = [store.save_namespace({"i": i}, label=f"step {i}").id for i in range(3)]
    listed = store.snapshots()
    assert [s.id for s in listed] == ids
    assert [s.label for s in listed] == ["step 0", "step 1", "step 2"]


def test_unknown_snapshot_is_one_clear_error(store: Store) -> None:
    from nbcellar.errors import NbcellarError

    with pytest.raises(NbcellarError, match="no snapshot 'nope'"):
        store.load_namespace("nope")


def test_changed_hint_still_keeps_a_new_alias_of_an_unchanged_value(store: Store) -> None:
    items = [1, 2]
    ns: dict[str, object] = {"a": items}
    store.save_namespace(ns)
    ns["b"] = items  # the cell that ran wrote b only
    snap = store.save_namespace(ns, changed=["b"])
    values = store.load_namespace(snap.id)
    assert values["a"] is values["b"]


def test_a_dropped_value_is_not_kept_alive_by_the_store(store: Store) -> None:
    import gc
    import weakref

    big = np.zeros(100_000)
    watch = weakref.ref(big)
    store.save_namespace({"big": big})
    del big
    store.save_namespace({"other": 1})
    gc.collect()
    assert watch() is None


def test_a_lock_held_by_a_dead_process_is_taken_over(store: Store) -> None:
    import socket
    import subprocess
    import sys

    from nbcellar.store.records_table import try_lock

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    with store.index.write() as db:
        db.execute(
            "INSERT INTO locks VALUES (?, ?, 0)",
            ("cell:k", f"{socket.gethostname()}:{dead.stdout.strip()}"),
        )
    assert try_lock(store.index, "cell:k")
    with store.index.write() as db:
        db.execute("UPDATE locks SET owner = ? WHERE name = 'cell:k'",
                   (f"{socket.gethostname()}:1",))  # fmt: skip
    assert not try_lock(store.index, "cell:k")  # pid 1 is alive: the lock is held


def test_background_save_is_written_and_indexed_after_flush(store: Store) -> None:
    calls: list[bool] = []
    data = np.arange(500_000.0)
    snap = store.save_namespace(
        {"data": data}, background=True, then=lambda _i, ok: calls.append(ok)
    )
    store.flush()
    assert calls == [True]
    np.testing.assert_array_equal(store.load_namespace(snap.id)["data"], data)
    assert store.verify().ok


def test_background_save_of_a_value_changed_while_writing_is_dropped(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = np.zeros(500_000)
    original_put = store.blobs.put_checked

    def put_after_a_change(view: object, key: object) -> object:
        data[10] = 1.0  # the next cell changes the array while it is being written
        return original_put(view, key)  # type: ignore[arg-type]

    monkeypatch.setattr(store.blobs, "put_checked", put_after_a_change)
    calls: list[bool] = []
    snap = store.save_namespace(
        {"data": data}, background=True, then=lambda _i, ok: calls.append(ok)
    )
    store.flush()
    assert calls == [False]
    assert snap.id not in {s.id for s in store.snapshots()}
    assert store.index.db.execute("SELECT COUNT(*) FROM pending").fetchone()[0] == 0
    assert store.verify().ok


def test_a_checked_write_stores_exactly_the_bytes_it_hashed(store: Store) -> None:
    from nbcellar.store.blobs import hash_bytes

    data = np.arange(3_000_000.0)  # larger than the private buffer the write goes through
    key = hash_bytes(memoryview(data).cast("B"))
    data[-1] = -1.0  # changed after it was hashed for the save
    assert not store.blobs.put_checked(memoryview(data).cast("B"), key)
    assert not store.blobs.has(key)
    assert not any(store.blobs.tmp.iterdir())
    data[-1] = 2_999_999.0
    assert store.blobs.put_checked(memoryview(data).cast("B"), key)
    assert store.blobs.intact(key)


@pytest.mark.parametrize("where", ["disk", "memory"])
def test_a_checked_write_of_any_length_on_any_file_system(tmp_path: Path, where: str) -> None:
    """Whole blocks go past the page cache (direct I/O), the rest through it: the blob is the
    same on a disk and in memory (tmpfs), whatever its length."""
    from nbcellar.store.blobs import BlobStore, hash_bytes

    if where == "memory":
        if not Path("/dev/shm").is_dir():
            pytest.skip("no /dev/shm (tmpfs) on this system; the disk case still runs")
        root = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="nbcellar-test-"))
    else:
        root = tmp_path / "objects"
    try:
        blobs = BlobStore(root)
        for size in (5, 4096, (4 << 20) - 1, 4 << 20, (9 << 20) + 4099):
            data = np.random.default_rng(size).integers(0, 255, size, dtype=np.uint8)
            key = hash_bytes(memoryview(data))
            assert blobs.put_checked(memoryview(data), key)
            assert blobs.intact(key)
            assert blobs.path(key).read_bytes() == data.tobytes()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_value_inside_another_is_not_pickled_on_its_own(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbcellar.store.namespace as namespace

    pickled: list[list[str]] = []
    original = namespace.dump

    def counting_dump(values: Any, *args: Any, **kwargs: Any) -> Any:
        pickled.append(sorted(values))
        return original(values, *args, **kwargs)

    monkeypatch.setattr(namespace, "dump", counting_dump)
    inner = [1, 2, 3]
    holder = {"inner": inner, "weights": np.arange(100_000.0)}  # as axes hold their figure
    snap = store.save_namespace({"holder": holder, "inner": inner})
    assert pickled == [["holder"], ["holder", "inner"]]
    loaded = store.load_namespace(snap.id)
    assert loaded["holder"]["inner"] is loaded["inner"]
    np.testing.assert_array_equal(loaded["holder"]["weights"], holder["weights"])


def test_a_long_stream_is_written_out_while_it_is_pickled(store: Store) -> None:
    from nbcellar.store.values import KEEP_LIMIT

    # A model-like value: many small arrays, all inside its pickle stream (about 9.6 MB).
    trees = [np.full(1000, float(i)) for i in range(1200)]
    assert sum(t.nbytes for t in trees) > KEEP_LIMIT
    calls: list[bool] = []
    snap = store.save_namespace(
        {"trees": trees}, background=True, then=lambda _i, ok: calls.append(ok)
    )
    # Changed while the background write is still to come: what the save saw is stored.
    trees[5][0] = -1.0
    store.flush()
    assert calls == [True]
    restored = store.load_namespace(snap.id)["trees"]
    assert [float(t[0]) for t in restored] == [float(i) for i in range(1200)]
    assert store.verify().ok
    assert not any(store.blobs.tmp.iterdir())  # no temporary file left behind

    # The same value saved again: its blob exists, the second file is dropped.
    trees[5][0] = 5.0
    again = store.save_namespace({"trees": trees}, background=True)
    store.flush()
    assert again.written_bytes == 0
    assert not any(store.blobs.tmp.iterdir())

    # Two long values sharing an object are pickled again together: the files of the first,
    # separate streams are dropped.
    other = {"first": trees[0], "rest": [np.full(1000, -1.0) for _ in range(1200)]}
    shared = store.save_namespace({"trees": trees, "other": other}, background=True)
    store.flush()
    loaded = store.load_namespace(shared.id)
    assert loaded["other"]["first"] is loaded["trees"][0]
    assert not any(store.blobs.tmp.iterdir())
