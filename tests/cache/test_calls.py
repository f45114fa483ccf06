"""Changes made through calls the code does not name: functions, classes and iterators."""

from __future__ import annotations

import pytest

from tests.cache.conftest import DictKernel
from tests.edits import edit_source


def same_as_a_run(kernel: DictKernel, cells: list[str], probe: str) -> object:
    """Run ``cells`` fresh (no cache), then twice with the cache (filling it, then after a
    restart); the probe's value must be the fresh one every time. Returns it."""
    fresh = dict(kernel.ns)
    exec("\n".join(cells), fresh)
    expected = eval(probe, fresh)
    kernel.run_all(cells)
    assert eval(probe, kernel.ns) == expected
    kernel.restart()
    kernel.run_all(cells)
    assert eval(probe, kernel.ns) == expected, kernel.statuses
    return expected


@pytest.mark.parametrize(
    ("cells", "probe"),
    [
        (  # a closure counter
            [
                "def make():\n    n = [0]\n    def count():\n        n[0] += 1\n"
                "        return n[0]\n    return count\ncount = make()",
                "count()",
                "c = count()",
            ],
            "(c, count())",
        ),
        (  # a mutable default used as a memo
            [
                "def seen(x, memo={}):\n    memo[x] = True\n    return len(memo)",
                "seen(1)",
                "n = seen(2)",
            ],
            "(n, seen(3))",
        ),
        (  # a callable object
            [
                "class Acc:\n    def __init__(self):\n        self.total = 0\n"
                "    def __call__(self, x):\n        self.total += x\nacc = Acc()",
                "acc(5)",
                "acc(2)",
            ],
            "acc.total",
        ),
        (  # a method changing its class
            [
                "class K:\n    n = 0\n    def bump(self):\n        type(self).n += 1\nk = K()",
                "k.bump()",
                "k.bump()",
            ],
            "(K.n, type(k) is K, k.n)",
        ),
        (  # instances registering themselves with their class
            [
                "class R:\n    registry = []\n    def __init__(self):\n"
                "        R.registry.append(len(R.registry))",
                "r = R()",
                "s = R()",
            ],
            "(R.registry, type(r) is R)",
        ),
        (  # an lru_cache filled by a later cell
            [
                "import functools\nscale = 2\n@functools.lru_cache\n"
                "def f(x):\n    return x * scale",
                "a = f(1)",
                "scale = 3",
                "b = f(1)\nc = f(2)",
            ],
            "(a, b, c, f.cache_info().currsize)",
        ),
        (  # an iterator consumed by a loop, list(), zip()
            [
                "it = iter(range(10))",
                "for x in it:\n    if x == 2:\n        break",
                "pairs = list(zip(it, it))",
            ],
            "(x, pairs, list(it))",
        ),
        (  # a function of the notebook shadowing a builtin
            ["def sorted(xs):\n    xs.append(0)\n    return xs\nxs = [3]", "ys = sorted(xs)"],
            "(xs, ys is xs)",
        ),
        (  # a lambda passed on changing a global
            ["seen = []", "list(map(lambda v: seen.append(v), [1, 2]))"],
            "seen",
        ),
    ],
)
def test_a_change_made_through_a_call_is_restored_as_a_run_makes_it(
    kernel: DictKernel, cells: list[str], probe: str
) -> None:
    same_as_a_run(kernel, cells, probe)


def test_a_cell_advancing_a_generator_always_runs_and_says_why(kernel: DictKernel) -> None:
    cells = ["gen = (i * i for i in range(5))", "a = next(gen)", "b = next(gen)"]
    same_as_a_run(kernel, cells, "(a, b, list(gen))")
    assert kernel.statuses == ["restored", "ran", "ran"]  # the first by running it again
    assert "gen (generator), which cannot be stored" in kernel.outcomes[1].reason


def edited_as_a_run(
    kernel: DictKernel, cells: list[str], edited: list[str], probe: str
) -> list[str]:
    """Run ``cells`` with the cache, restart, run ``edited``: the probe must be what a fresh
    run of ``edited`` gives. Returns the statuses of the edited run."""
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(edited)
    fresh = {"__name__": "__main__"}
    exec("\n".join(edited), fresh)
    assert eval(probe, kernel.ns) == eval(probe, fresh), kernel.statuses
    return kernel.statuses


@pytest.mark.parametrize(
    ("setup", "use"),
    [
        (
            "class M:\n    def predict(self, x):\n        return x * SCALE\nm = M()",
            "v = m.predict(1)",
        ),
        ("def double(x):\n    return x * SCALE\nops = {'double': double}", "v = ops['double'](1)"),
        (
            "import functools\ndef mul(x, y):\n    return x * y * SCALE\n"
            "triple = functools.partial(mul, 3)",
            "v = triple(1)",
        ),
        (
            "def outer(f):\n    def inner(x):\n        return f(x) + 1\n    return inner\n"
            "@outer\ndef g(x):\n    return x * SCALE",
            "v = g(1)",
        ),
    ],
)
def test_a_global_read_through_code_inside_a_value_is_an_input(
    kernel: DictKernel, setup: str, use: str
) -> None:
    statuses = edited_as_a_run(kernel, ["SCALE = 2", setup, use], ["SCALE = 3", setup, use], "v")
    assert statuses[2] == "ran"


def test_a_project_module_imported_inside_a_function_is_an_input(kernel: DictKernel) -> None:
    module = kernel.project / "rates_inside.py"
    module.write_text("RATE = 2\n")
    cells = [
        "def price(x):\n    import rates_inside\n    return x * rates_inside.RATE",
        "v = price(10)",
    ]
    kernel.run_all(cells)
    kernel.restart()
    edit_source(module, "RATE = 5\n")
    kernel.run_all(cells)
    assert kernel.statuses == ["restored", "ran"]
    assert kernel.ns["v"] == 50


def test_a_variable_named_in_a_query_string_is_an_input(kernel: DictKernel) -> None:
    setup = "import pandas as pd\ndf = pd.DataFrame({'a': [1, 5, 9]})"
    statuses = edited_as_a_run(
        kernel,
        [setup, "thr = 2", "n = len(df.query('a > @thr'))"],
        [setup, "thr = 6", "n = len(df.query('a > @thr'))"],
        "n",
    )
    assert statuses == ["restored", "ran", "ran"]


def test_a_class_with_slots_called_in_a_cell_is_restored(kernel: DictKernel) -> None:
    cells = [
        "class P:\n    __slots__ = ('x',)\n    def __init__(self, x):\n        self.x = x",
        "p = P(1)",
        "p.x += 1",
    ]
    same_as_a_run(kernel, cells, "(p.x, type(p) is P)")
    assert kernel.statuses == ["restored"] * 3
