"""``nbcellar.inherit`` from a base notebook open in a real Jupyter server: the kernel saves its
namespace into the store on request, the child loads it; isolation both ways; selection;
unserializable values; a busy base."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from nbcellar.runs.inherit import InheritError, inherit

pytestmark = pytest.mark.slow

SETUP = [
    "import sqlite3\nimport numpy as np\nimport pandas as pd",
    "data = np.arange(200_000, dtype=np.float64)\nitems = [1, 2, 3]",
    "frame = pd.DataFrame({'x': [1.0, 2.0]})\ndef total(v):\n    return float(v.sum()) + bias\n",
    "bias = 0.5",
    "conn = sqlite3.connect(':memory:')\nconn.execute('create table t (v)')",
]


def base_client(running: Any) -> Any:
    from jupyter_client.blocking.client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=str(running.connection_file))
    client.load_connection_file()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    return client


def in_base(client: Any, code: str) -> Any:
    """Run ``code`` in the base kernel like a cell; the value of its last expression."""
    results: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "execute_result":
            results.append(msg["content"]["data"]["text/plain"])

    reply = client.execute_interactive(code, timeout=60, output_hook=hook)
    assert reply["content"]["status"] == "ok", reply["content"]
    return results[-1] if results else None


@pytest.fixture(scope="module")
def base(jupyter_server: Any) -> Any:
    from nbcellar.kernel.servers import find_running

    path = jupyter_server.root_dir / "base.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, path)
    jupyter_server.open_notebook("base.ipynb")
    running = find_running(path)
    assert running is not None
    client = base_client(running)
    for cell in SETUP:
        in_base(client, cell)
    yield client
    client.stop_channels()


def test_the_running_kernel_state_comes_over_isolated_both_ways(
    base: Any, jupyter_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(jupyter_server.root_dir)
    child: dict[str, Any] = {}
    got = inherit("base.ipynb", into=child)
    assert "running kernel" in got.source
    assert child["data"].sum() == float(sum(range(200_000)))
    assert child["total"](child["frame"]["x"]) == 3.5  # a function reading its global
    assert child["items"] == [1, 2, 3]
    assert child["conn"].execute("select count(*) from t").fetchone() == (0,)  # rebuilt
    assert "conn" in got.rebuilt
    assert not {"In", "Out", "get_ipython", "exit", "quit", "open", "_"} & set(child)

    # The child changes its copies: the base does not see it.
    child["data"][:3] = -1.0
    child["items"].append(4)
    assert in_base(base, "data[:3].tolist(), items") == "([0.0, 1.0, 2.0], [1, 2, 3])"
    # The base changes later: the child that already inherited does not see it.
    in_base(base, "items.append(99)\nbias = 10")
    assert child["items"] == [1, 2, 3, 4]
    assert child["bias"] == 0.5

    # Inheriting again brings the new state; only the changed values are new in the store.
    again: dict[str, Any] = {}
    inherit(jupyter_server.root_dir / "base.ipynb", names=["items", "bias", "data"], into=again)
    assert again["items"] == [1, 2, 3, 99]
    assert set(again) == {"items", "bias", "data"}
    assert again["data"][:3].tolist() == [0.0, 1.0, 2.0]
    in_base(base, "items.remove(99)\nbias = 0.5")


def test_a_busy_base_is_one_clear_error_after_the_timeout(
    base: Any, jupyter_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(jupyter_server.root_dir)
    base.execute("import time\ntime.sleep(3)")
    began = time.monotonic()
    with pytest.raises(InheritError, match=r"stayed busy for more than 1 s"):
        inherit("base.ipynb", into={}, timeout=1)
    assert time.monotonic() - began < 2.5
    time.sleep(3)  # the sleeping cell, then the queued request, finish in the base
    child: dict[str, Any] = {}
    inherit("base.ipynb", names=["bias"], into=child)
    assert child == {"bias": 0.5}


def test_a_notebook_beside_it_that_is_not_open_was_never_run(
    jupyter_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(jupyter_server.root_dir)
    other = Path("other.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), other)
    with pytest.raises(InheritError, match="never run with nbcellar; run it first"):
        inherit(other, into={})


def test_a_base_caching_its_cells_has_its_values_stored_already(
    jupyter_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the base's cached cells stored (or are still writing) is not stored twice."""
    from nbcellar.kernel.servers import find_running

    monkeypatch.chdir(jupyter_server.root_dir)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, Path("cached.ipynb"))
    jupyter_server.open_notebook("cached.ipynb")
    running = find_running(Path("cached.ipynb").absolute())
    assert running is not None
    client = base_client(running)
    try:
        in_base(client, "%load_ext nbcellar")
        in_base(client, "import numpy as np\nbig = np.arange(3_000_000.0)\nlabel = 'base'")
        root = Path(eval(in_base(client, "str(get_ipython().nbcellar.cache.store.root)")))

        child: dict[str, Any] = {}
        got = inherit("cached.ipynb", into=child, store=root)
        assert "running kernel" in got.source
        assert child["big"][-1] == 2_999_999.0
        assert child["label"] == "base"
        stored = sum(p.stat().st_size for p in (root / "objects").rglob("*") if p.is_file())
        assert 24_000_000 < stored < 30_000_000  # the array once
    finally:
        client.stop_channels()
