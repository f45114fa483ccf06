"""Property: any namespace of plain values, arrays and aliases comes back equal and aliased."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nbcellar.store import open_store

scalars = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.text(max_size=20), st.booleans(), st.none()
)
arrays = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.int32, np.uint8, np.bool_]),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=40),
)
values = st.recursive(
    st.one_of(scalars, arrays),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        )
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), values, max_size=6),
    aliases=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=4),
)
def test_namespace_round_trip(base: dict[str, Any], aliases: list[tuple[int, int]]) -> None:
    ns = dict(base)
    names = sorted(ns)
    for target, source in aliases:
        if names and isinstance(ns[names[source % len(names)]], list | dict | np.ndarray):
            ns[f"alias{target}"] = ns[names[source % len(names)]]
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder))
        snap = store.save_namespace(ns)
        loaded = store.load_namespace(snap.id)
        store.close()
    assert loaded.keys() == ns.keys()
    for name in ns:
        assert same(loaded[name], ns[name]), name
        for other in ns:
            if ns[other] is ns[name] and isinstance(ns[name], list | dict | np.ndarray):
                assert loaded[other] is loaded[name]
