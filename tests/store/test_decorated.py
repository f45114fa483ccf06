"""What library decorators make of notebook functions is stored and restored, and behaves as
re-running its cell would leave it."""

from __future__ import annotations

import textwrap

import pytest

from nbcellar.store import Store
from tests.store.conftest import Kernels

CASES = {
    "lru_cache": (
        """
        import functools
        calls = []
        @functools.lru_cache(maxsize=2, typed=True)
        def area(r):
            calls.append(r)
            return r * r * scale
        area(1)
        """,
        "(area(1), area(1), area(2), area.cache_info(), area.cache_parameters(), calls)",
    ),
    "cache": (
        "import functools\n@functools.cache\ndef fib(n):\n"
        "    return n if n < 2 else (fib(n - 1) + fib(n - 2)) * scale\nfib(5)",
        "(fib(6), fib.cache_info().currsize, fib.__wrapped__.__name__)",
    ),
    "cache with keyword arguments": (
        "import functools\nseen = []\n@functools.cache\ndef f(a, *rest, k=1):\n"
        "    seen.append(a)\n    return (a, rest, k * scale)\nf(1, k=2); f((1,)); f('s', 2)",
        "(f(1, k=2), f((1,)), f('s', 2), f(1), seen)",
    ),
    "lru_cache hits and misses": (
        "import functools\n@functools.lru_cache(maxsize=1)\ndef f(x):\n    return x * scale\n"
        "f(1); f(1); f(2); f(1); f(1)",
        "(f.cache_info(), f(1), f.cache_info())",
    ),
    "cache in a registry": (
        "import functools\n@functools.cache\ndef f(x):\n    return x * scale\nops = {'f': f}",
        "(ops['f'](2), ops['f'] is f)",
    ),
    "singledispatch": (
        """
        import functools
        @functools.singledispatch
        def describe(value):
            return "something"
        @describe.register
        def _(value: int):
            return value * scale
        @describe.register(list)
        def _(value):
            return [describe(v) for v in value]
        """,
        "(describe(1), describe('a'), describe([1, 'b']),"
        " sorted(t.__name__ for t in describe.registry))",
    ),
    "singledispatchmethod": (
        """
        import functools
        class Formatter:
            @functools.singledispatchmethod
            def format(self, value):
                return "?"
            @format.register
            def _(self, value: int):
                return value * scale
        """,
        "(Formatter().format(2), Formatter().format(None))",
    ),
    "cached_property": (
        """
        import functools
        class Dataset:
            def __init__(self, n):
                self.n = n
            @functools.cached_property
            def total(self):
                return self.n * scale
        seen = Dataset(1)
        seen.total
        fresh = Dataset(2)
        """,
        "(seen.total, fresh.total, Dataset(3).total, 'total' in vars(seen))",
    ),
    "NewType": (
        "from typing import NewType\nUserId = NewType('UserId', int)",
        "(UserId(5), repr(UserId), UserId.__supertype__)",
    ),
    "ParamSpec": (
        "from typing import Callable, ParamSpec\nP = ParamSpec('P')\nHook = Callable[P, int]",
        "(repr(P), repr(Hook), Hook.__parameters__[0] is P)",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_decorated_functions_restore_as_rerunning_leaves_them(
    kernels: Kernels, store: Store, case: str
) -> None:
    cell, check = CASES[case]
    got, want = kernels.restored_and_rerun(
        store, ["scale = 2", textwrap.dedent(cell)], "scale = 3", check
    )
    assert got == want


def test_a_restored_cache_holds_what_it_held_and_drops_the_same_entry_first(
    kernels: Kernels, store: Store
) -> None:
    cell = """
    import functools
    calls = []
    @functools.lru_cache(maxsize=3, typed=True)
    def load(name, scale=1, *, tag=""):
        calls.append(name)
        return {"name": name, "size": len(name) * scale}
    first = load("a", 2)
    load("bb", tag="x"); load("a", 2); load("ccc")
    """
    after = "calls.clear()\nload('a', 2); load('dddd'); load('bb', tag='x'); load('ccc')"
    check = "(calls, load('ccc') is load('ccc'), first is load('a', 2), load.cache_info().currsize)"
    got, want = kernels.restored_and_rerun(store, [textwrap.dedent(cell)], after, check)
    assert got == want
    assert got[0][:2] == ["dddd", "bb"]  # "bb" was the least recently used: dropped first
