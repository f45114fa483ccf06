"""The dashboard's cache page: entries, sizes, hits and time saved per notebook, from real runs
(real kernels, a real store), and what a prune would free, checked against the prune."""

from __future__ import annotations

from pathlib import Path

import pytest

import nbcellar
from nbcellar.cache.prune import prune
from nbcellar.store import open_store
from tests.ui.test_server import client

pytestmark = pytest.mark.slow

NOTEBOOK = """\
# %% tags=["parameters"]
scale = 2
# %%
import time
import numpy as np
# %%
time.sleep(0.3)
data = np.arange(200_000) * scale
# %%
total = float(data.sum())
"""


def test_the_cache_page_counts_hits_and_time_saved_and_what_prune_frees(tmp_path: Path) -> None:
    path = tmp_path / "slow.py"
    store = tmp_path / ".nbcellar"
    path.write_text(NOTEBOOK)
    nbcellar.run(path, store=store)
    nbcellar.run(path, store=store)  # (every cell restored: served from the store)
    nbcellar.run(path, store=store, params={"scale": 3})  # the first data entry superseded
    with client(store) as http:
        answer = http.get("/api/cache").json()
        page = http.get("/cache")
    assert page.status_code == 200
    assert "/cache" in page.text
    (usage,) = answer["notebooks"]
    assert usage["notebook"].endswith("slow.py")
    assert usage["runs"] == 3
    # the parameters cell, the injected one of scale=3, import, data x2, total x2
    assert usage["entries"] == answer["entries"] == 7
    assert usage["hits"] == 6  # the second run's 4 cells, the third's first two
    assert answer["unused"] == 0
    assert usage["saved_seconds"] >= 0.3  # the sleep, restored once
    assert answer["bytes"] > 2 * 1_600_000  # two arrays of 1.6 MB
    superseded = answer["prune"]["superseded"]
    assert superseded["entries"] == 2  # data and total with scale=2
    assert 1_600_000 <= superseded["bytes"] < 2 * 1_600_000  # the first array, not the second
    opened = open_store(store)
    try:
        assert prune(opened, superseded=True).entries == superseded["entries"]
    finally:
        opened.close()
