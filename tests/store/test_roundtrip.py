"""Every kind of value comes back equal, aliases come back shared, arrays come back mapped."""

from __future__ import annotations

import datetime as dt
import decimal
import fractions
import subprocess
import sys
import textwrap
from collections import Counter, OrderedDict, deque
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from nbcellar.store import Store


def roundtrip(store: Store, **values: Any) -> dict[str, Any]:
    snap = store.save_namespace(values)
    return store.load_namespace(snap.id)


PLAIN = {
    "int": 12345678901234567890,
    "float": 3.25,
    "complex": 1 - 2j,
    "str": "héllo ✓",
    "none": None,
    "bool": True,
    "list": [1, "a", [2.0, None]],
    "tuple": (1, (2, 3)),
    "dict": {"a": 1, 2: [3]},
    "set": {1, 2, 3},
    "frozenset": frozenset({"x"}),
    "small_bytes": b"\x00\x01",
    "large_bytes": bytes(range(256)) * 1024,
    "large_bytearray": bytearray(b"z" * 200_000),
    "deque": deque([1, 2]),
    "counter": Counter("hello"),
    "ordered": OrderedDict(b=1, a=2),
    "datetime": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
    "decimal": decimal.Decimal("1.10"),
    "fraction": fractions.Fraction(1, 3),
    "range": range(3, 30, 3),
    "path": Path("/tmp/x"),
}


@pytest.mark.parametrize("name", PLAIN)
def test_plain_python_values(store: Store, name: str) -> None:
    restored = roundtrip(store, value=PLAIN[name])["value"]
    assert restored == PLAIN[name]
    assert type(restored) is type(PLAIN[name])


ARRAYS = {
    "1d": np.arange(10.0),
    "2d-c": np.arange(24, dtype=np.int32).reshape(4, 6),
    "2d-fortran": np.asfortranarray(np.arange(24.0).reshape(4, 6)),
    "non-contiguous": np.arange(300_000.0).reshape(1000, 300)[::3, ::2],
    "large": np.random.default_rng(0).random(500_000),
    "0-d": np.array(7.5),
    "empty": np.empty((0, 3)),
    "bool": np.array([True, False]),
    "structured": np.array([(1, 2.0), (3, 4.0)], dtype=[("a", "i4"), ("b", "f8")]),
    "object": np.array(["a", None, 3], dtype=object),
    "datetime64": np.arange("2024-01", "2024-06", dtype="datetime64[D]"),
    "float16": np.linspace(0, 1, 10, dtype=np.float16),
}


@pytest.mark.parametrize("name", ARRAYS)
def test_numpy_arrays(store: Store, name: str) -> None:
    original = ARRAYS[name]
    restored = roundtrip(store, array=original)["array"]
    assert restored.dtype == original.dtype
    assert restored.shape == original.shape
    np.testing.assert_array_equal(restored, original)
    assert restored.flags.writeable


def test_pandas_objects(store: Store) -> None:
    n = 50_000
    frame = pd.DataFrame(
        {
            "x": np.arange(n, dtype=float),
            "i": np.arange(n),
            "s": [f"row {i}" for i in range(n)],
            "c": pd.Categorical(["a", "b"] * (n // 2)),
            "t": pd.date_range("2024-01-01", periods=n, freq="min"),
        }
    )
    values = roundtrip(
        store, frame=frame, series=frame["x"], index=frame.index, multi=frame.set_index(["c", "i"])
    )
    pd.testing.assert_frame_equal(values["frame"], frame)
    pd.testing.assert_series_equal(values["series"], frame["x"])
    pd.testing.assert_index_equal(values["index"], frame.index)
    pd.testing.assert_frame_equal(values["multi"], frame.set_index(["c", "i"]))


def test_pyarrow_values(store: Store) -> None:
    array = pa.array([f"v{i}" for i in range(100_000)])
    table = pa.table({"a": pa.array(np.arange(100_000)), "b": array})
    values = roundtrip(store, array=array, table=table)
    assert values["array"].equals(array)
    assert values["table"].equals(table)


def test_large_buffers_are_blobs_of_their_own(store: Store) -> None:
    big = np.random.default_rng(1).random(1_000_000)
    snap = store.save_namespace({"big": big, "small": [1, 2]})
    info = store.info()
    assert info.bytes_on_disk >= big.nbytes
    assert snap["big"].nbytes >= big.nbytes
    assert snap["small"].nbytes < 1000


def test_restored_arrays_are_copy_on_write_maps(store: Store) -> None:
    big = np.random.default_rng(2).random(1_000_000)
    snap = store.save_namespace({"big": big})
    first = store.load_namespace(snap.id)["big"]
    assert first.flags.writeable
    assert not first.flags.owndata  # backed by the mapped blob, not a copy
    first[:] = -1.0  # writes go to private pages
    again = store.load_namespace(snap.id)["big"]
    np.testing.assert_array_equal(again, big)
    assert store.verify().ok


def test_aliases_come_back_shared(store: Store) -> None:
    shared_list = [1, 2]
    base = np.arange(100_000.0)
    values = roundtrip(
        store,
        a=shared_list,
        b=shared_list,
        holder={"items": shared_list},
        base=base,
        view=base[10:20],
        strided=base[::7],
        unrelated=[1, 2],
    )
    assert values["a"] is values["b"]
    assert values["holder"]["items"] is values["a"]
    assert values["unrelated"] is not values["a"]
    values["a"].append(3)
    assert values["holder"]["items"] == [1, 2, 3]
    assert np.shares_memory(values["base"], values["view"])
    assert np.shares_memory(values["base"], values["strided"])
    values["base"][10] = -5.0
    assert values["view"][0] == -5.0
    assert values["strided"][0] == 0.0


class Node:
    pass


def test_objects_holding_each_other_come_back_linked(store: Store) -> None:
    # (an axes and its figure: pickled together from the start, see namespace._linked)
    a, b, c = Node(), Node(), Node()
    a.partner, b.partner = b, a
    a.data = np.arange(200_000.0)
    c.view = a.data[5:]  # a view inside another linked value: kept a view
    c.owner = a
    snap = store.save_namespace({"a": a, "b": b, "c": c, "alone": Node()})
    assert len({v.value_key for v in snap.variables if v.name != "alone"}) == 1
    values = store.load_namespace(snap.id)
    assert values["a"].partner is values["b"]
    assert values["b"].partner is values["a"]
    assert values["c"].owner is values["a"]
    values["a"].data[5] = -1.0
    assert values["c"].view[0] == -1.0


def test_two_views_of_an_unsaved_base_stay_linked(store: Store) -> None:
    base = np.arange(1000.0)
    left, right = base[:600], base[400:]
    del base
    values = roundtrip(store, left=left, right=right)
    values["left"][500] = -1.0
    assert values["right"][100] == -1.0


def test_aliasing_within_one_value(store: Store) -> None:
    base = np.zeros(10)
    values = roundtrip(store, pair={"base": base, "view": base[2:4]})
    pair = values["pair"]
    pair["view"][0] = 9.0
    assert pair["base"][2] == 9.0


def test_unrelated_variables_are_stored_separately(store: Store) -> None:
    big = np.arange(100_000.0)
    snap = store.save_namespace({"x": [1], "y": [1], "z": big, "w": big.copy()})
    keys = {snap[n].value_key for n in ("x", "y", "z", "w")}
    assert len(keys) == 4
    # Equal data is stored once all the same: z and w share their buffer blob.
    assert store.info().bytes_on_disk < 1.5 * big.nbytes


MAIN_SCRIPT = """
import sys
from nbcellar.store import open_store

SCALE = 3

def scaled(x):
    return x * SCALE

def make_counter():
    count = 0
    def bump():
        nonlocal count
        count += 1
        return count
    return bump

class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y
    def norm2(self):
        return self.x ** 2 + self.y ** 2

counter = make_counter()
counter()
square = lambda v: v * v
p = Point(3, 4)
store = open_store(sys.argv[1])
print(store.save_namespace({"scaled": scaled, "counter": counter, "square": square,
                             "Point": Point, "p": p}).id)
"""

LOAD_SCRIPT = """
import sys
from nbcellar.store import open_store

ns = open_store(sys.argv[1]).load_namespace(sys.argv[2])
print(ns["scaled"](2), ns["counter"](), ns["square"](5), ns["p"].norm2(),
      isinstance(ns["p"], ns["Point"]))
"""


def test_functions_and_classes_from_main_are_stored_by_value(tmp_path: Path) -> None:
    store_dir = str(tmp_path / ".nbcellar")
    saved = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(MAIN_SCRIPT), store_dir],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    snapshot_id = saved.stdout.strip()
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, store_dir, snapshot_id],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert loaded.stdout.split() == ["6", "2", "25", "25", "True"]


def test_importable_functions_are_stored_by_reference(store: Store) -> None:
    import json
    import os.path

    snap = store.save_namespace({"dumps": json.dumps, "join": os.path.join})
    values = store.load_namespace(snap.id)
    assert values["dumps"] is json.dumps
    assert values["join"] is os.path.join
    assert snap["dumps"].nbytes < 200


def test_a_closed_file_is_stored_as_a_closed_file(store: Store, tmp_path: Path) -> None:
    with open(tmp_path / "notes.txt", "w") as handle:
        handle.write("x")
    values = roundtrip(store, handle=handle)
    restored = values["handle"]
    assert restored.closed
    assert restored.name == str(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="closed file"):
        restored.read()


def test_values_stored_in_the_first_blob_layout_still_load(store: Store) -> None:
    import json

    from nbcellar.store.blobs import hash_bytes
    from nbcellar.store.values import MAGIC_V1, dump, read_value

    big = np.arange(50_000.0)  # one out-of-band buffer
    dumped = dump({"big": big, "note": "first layout"})
    buffer_key = store.blobs.put(dumped.buffers[0])
    header = json.dumps({"buffers": [[buffer_key, big.nbytes]]}, separators=(",", ":"))
    blob = MAGIC_V1 + header.encode("ascii") + b"\n" + dumped.stream.getvalue()
    key = store.blobs.put(blob)
    assert key == hash_bytes(blob)
    loaded = read_value(store.blobs, key, {})
    np.testing.assert_array_equal(loaded["big"], big)
    assert loaded["note"] == "first layout"


def test_a_value_blob_is_hashed_while_it_is_pickled(store: Store) -> None:
    from nbcellar.cache.fingerprint import fingerprint
    from nbcellar.store.blobs import hash_bytes
    from nbcellar.store.values import dump, prepare

    # Many small arrays (as in a random forest's trees) stay in the stream: 1.6 MB of it.
    trees = [np.arange(1000.0) + i for i in range(200)]
    prepared = prepare(dump({"trees": trees}))
    assert len(prepared.parts) > 10  # the stream came in frames, never joined
    assert hash_bytes(prepared.blob) == prepared.key
    assert fingerprint(trees, "trees") == prepared.key
    snap = store.save_namespace({"trees": trees})
    assert snap["trees"].value_key == prepared.key
    restored = store.load_namespace(snap.id)["trees"]
    assert all(np.array_equal(a, b) for a, b in zip(restored, trees, strict=True))
