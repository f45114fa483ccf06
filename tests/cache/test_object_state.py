"""State inside objects and values that cannot be stored: a restore gives what running gives."""

from __future__ import annotations

from tests.cache.conftest import DictKernel


def test_a_cell_changing_a_connection_runs_again_when_the_connection_is_made_again(
    kernel: DictKernel,
) -> None:
    cells = [
        "import sqlite3\nconn = sqlite3.connect(':memory:')",
        "conn.execute('CREATE TABLE t (x)');",
        "conn.execute('INSERT INTO t VALUES (1), (2)');",
        "total = 10",
    ]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["restored"] * 4  # the first three by running them again
    assert kernel.ns["conn"].execute("SELECT count(*) FROM t").fetchone() == (2,)
    reasons = [o.reason for o in kernel.outcomes]
    assert "conn (Connection), which cannot be stored" in reasons[1]
    assert reasons[3] == ""


def test_a_cell_a_thread_waits_for_runs_again_with_the_thread(kernel: DictKernel) -> None:
    cells = [
        "import threading\nresults = []\ngo = threading.Event()\ndef work():\n"
        "    go.wait()\n    results.append(42)\n"
        "worker = threading.Thread(target=work, daemon=True)\nworker.start()",
        "go.set()\nworker.join(5)",
    ]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.ns["results"] == [42]
    assert not kernel.ns["worker"].is_alive()


def test_a_query_read_into_a_frame_leaves_the_connection_as_it_was(kernel: DictKernel) -> None:
    cells = [
        "import sqlite3\nimport pandas as pd\nconn = sqlite3.connect(':memory:')\n"
        "conn.execute('CREATE TABLE t (x)')\nconn.execute('INSERT INTO t VALUES (1), (2)')",
        "df = pd.read_sql('SELECT x FROM t', conn)",
    ]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.outcomes[1].reason == ""  # restored from the store, not run again
    assert kernel.ns["df"]["x"].tolist() == [1, 2]
