"""State inside objects and values that cannot be stored: a restore gives what running gives."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_a_query_that_only_reads_leaves_the_connection_as_it_was(kernel: DictKernel) -> None:
    cells = [
        "import sqlite3\nconn = sqlite3.connect(':memory:')\n"
        "conn.execute('CREATE TABLE t (x)')\nconn.execute('INSERT INTO t VALUES (1), (2)')",
        "total = conn.execute('SELECT SUM(x) FROM t').fetchone()[0]",
        "conn.execute('INSERT INTO t VALUES (3)').close()",
    ]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.outcomes[1].reason == ""  # restored from the store, not run again
    assert kernel.ns["total"] == 3
    assert "may change conn" in kernel.outcomes[2].reason
    assert kernel.ns["conn"].execute("SELECT count(*) FROM t").fetchone() == (3,)


def test_a_temporary_directory_is_made_again_not_restored_deleted(kernel: DictKernel) -> None:
    cells = [
        "import os, tempfile\ntmp = tempfile.TemporaryDirectory()\n"
        "path = os.path.join(tmp.name, 'x.txt')\nwith open(path, 'w') as f:\n    f.write('hi')",
        "import pathlib\ntext = pathlib.Path(path).read_text()",
    ]
    kernel.run_all(cells)
    kernel.ns["tmp"].cleanup()  # as the kernel shutting down does
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.ns["text"] == "hi"
    assert Path(kernel.ns["path"]).read_text() == "hi"
    kernel.ns["tmp"].cleanup()
    # Run again: the folder the first run made is gone (and could not be stored anyway).
    reason = kernel.outcomes[0].reason
    assert "weakref.finalize" in reason or reason.startswith("a file it wrote changed")


def test_a_loaded_c_library_is_loaded_again(kernel: DictKernel) -> None:
    cells = ["import ctypes\nlibc = ctypes.CDLL(None)", "n = libc.abs(-3)"]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["restored", "restored"]  # both by running them again
    assert kernel.ns["n"] == 3


def test_a_defaultdict_reads_the_globals_its_factory_reads(kernel: DictKernel) -> None:
    kernel.run_all(["from collections import defaultdict\ncounts = defaultdict(lambda: START)",
                    "START = 10"])  # fmt: skip
    plan = kernel.cache.plan("counts['x'] += 1", (), kernel.ns, wait=False)
    assert plan.inputs is not None
    assert "START" in plan.inputs.names


def test_two_values_sharing_an_unnamed_list_share_it_after_a_restore(kernel: DictKernel) -> None:
    cells = [
        "shared = [1, 2]\na = {'x': shared}\nb = {'y': shared}\ndel shared",
        "a['x'].append(3)",
    ]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["restored", "restored"]
    assert kernel.ns["a"]["x"] is kernel.ns["b"]["y"]
    assert kernel.ns["b"] == {"y": [1, 2, 3]}


def test_an_immutable_value_in_common_does_not_tie_two_values(kernel: DictKernel) -> None:
    cells = ["a = {'x': [], 'shape': ()}\nb = {'shape': ()}", "a['x'].append(1)", "c = len(b)"]
    kernel.run_all(cells)
    assert kernel.outcomes[1].mutated == ("a",)


@pytest.mark.parametrize(
    "cls",
    [
        "import functools\nclass Data:\n    @functools.cached_property\n"
        "    def total(self):\n        return 42",
        "class Data:\n    @property\n    def total(self):\n"
        "        self.__dict__.setdefault('_total', 42)\n        return self._total",
    ],
    ids=["cached_property", "lazy_property"],
)
def test_what_reading_an_attribute_kept_is_still_there_after_a_restore(
    kernel: DictKernel, cls: str
) -> None:
    cells = [cls, "d = Data()", "first = d.total"]
    kernel.run_all(cells)
    kept = dict(vars(kernel.ns["d"]))
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["restored"] * 3
    assert vars(kernel.ns["d"]) == kept != {}


def test_a_method_changing_a_global_through_an_attribute_is_recorded(kernel: DictKernel) -> None:
    cells = [
        "registry = []\nclass Plugin:\n    def __init__(self, name):\n        self.name = name\n"
        "        self.registry = registry\n    def register(self):\n"
        "        self.registry.append(self.name)",
        "p = Plugin('a')\np.register()",
        "q = Plugin('b')\nq.register()",
    ]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["restored"] * 3
    assert kernel.ns["registry"] == ["a", "b"]
    assert kernel.ns["p"].registry is kernel.ns["registry"] is kernel.ns["q"].registry


def test_an_lru_cache_comes_back_with_its_hits_and_misses(kernel: DictKernel) -> None:
    cells = [
        "import functools\n@functools.lru_cache(maxsize=2)\ndef square(n):\n    return n * n",
        "a = square(3)",
        "b = square(3) + square(4) + square(5) + square(5)",
    ]
    kernel.run_all(cells)
    info = kernel.ns["square"].cache_info()
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["restored"] * 3
    assert kernel.ns["square"].cache_info() == info
    kernel.run("c = square(3)")  # dropped from the cache, as it was in the run
    assert kernel.ns["square"].cache_info().misses == info.misses + 1


def test_an_object_whose_getstate_drops_what_the_cell_made_is_made_by_running_it(
    kernel: DictKernel,
) -> None:
    cells = [
        "class Model:\n    def __init__(self, k):\n        self.k = k\n        self._cache = {}\n"
        "    def __getstate__(self):\n        return dict(self.__dict__, _cache={})\n"
        "    def score(self, x):\n        return self._cache.setdefault(x, x * self.k)",
        "m = Model(3)\nm.score(2)",
        "n = len(m._cache)",
    ]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["restored"] * 3  # the second by running it again
    assert kernel.ns["m"]._cache == {2: 6}
    assert "Model loses or changes _cache" in kernel.outcomes[1].reason
    assert kernel.outcomes[2].reason == ""


def test_an_object_whose_getstate_keeps_its_state_is_stored(kernel: DictKernel) -> None:
    cells = [
        "class Point:\n    __slots__ = ('x', 'y')\n    def __init__(self, x, y):\n"
        "        self.x, self.y = x, [y]\n    def __getstate__(self):\n"
        "        return (None, {'x': self.x, 'y': self.y})",
        "p = Point(1, 2)",
    ]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.outcomes[1].reason == ""  # restored from the store, not run again
    assert (kernel.ns["p"].x, kernel.ns["p"].y) == (1, [2])


@pytest.mark.parametrize(
    ("setup", "call", "probe"),
    [
        ("log = []\npush = log.append", "push(3)", "(log, push.__self__ is log)"),
        (
            "class Counter:\n    def __init__(self):\n        self.n = 0\n"
            "    def increment(self):\n        self.n += 1\nc = Counter()\ninc = c.increment",
            "inc()",
            "(c.n, inc.__self__ is c)",
        ),
        (
            "import functools\nacc = []\nadd = functools.partial(list.append, acc)",
            "add(1)",
            "(acc, add.args[0] is acc)",
        ),
    ],
    ids=["builtin_method", "notebook_method", "partial"],
)
def test_a_call_through_a_value_holding_what_it_changes_is_recorded(
    kernel: DictKernel, setup: str, call: str, probe: str
) -> None:
    cells = [setup, call, call]  # the second call is not the first one again
    kernel.run_all(cells)
    expected = eval(probe, kernel.ns)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["restored"] * 3
    assert eval(probe, kernel.ns) == expected


def test_a_class_made_again_by_a_cell_run_again_keeps_its_version(kernel: DictKernel) -> None:
    cells = [
        "import threading\nclass Box:\n    def __init__(self):\n"
        "        self.lock = threading.Lock()\n        self.items = []\n"
        "    def add(self, x):\n        with self.lock:\n            self.items.append(x)\n"
        "box = Box()",
        "box.add(1)",
        "kind = Box.__name__",
    ]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["restored"] * 3  # the first two by running them again
    assert kernel.outcomes[2].reason == ""
    assert kernel.ns["box"].items == [1]


@pytest.mark.parametrize(
    ("sql", "reads"),
    [
        ("SELECT SUM(x) FROM t", True),
        ("-- totals\nWITH a AS (SELECT 1) SELECT * FROM a;", True),
        ("SELECT 'insert' FROM t", True),
        ("SELECT x INTO t2 FROM t", False),
        ("SELECT 1; DROP TABLE t", False),
        ("CREATE TABLE t (x)", False),
        ("PRAGMA user_version = 3", False),
    ],
)
def test_only_a_query_that_reads_is_taken_to_leave_its_connection_alone(
    sql: str, reads: bool
) -> None:
    from nbcellar.cache.purity import reads_only

    assert reads_only(sql) is reads
