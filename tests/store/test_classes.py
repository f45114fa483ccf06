"""Restored notebook classes are made as their cells made them: a base's ``__init_subclass__``
sees the whole class, once, and what it did is what re-running the cells does."""

from __future__ import annotations

import textwrap

import pytest

from nbcellar.store import Store
from tests.store.conftest import Kernels

PLUGINS = """
class Plugin:
    registry = {}
    name = None
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Plugin.registry[cls.name] = cls.__name__
"""
READERS = """
class CSV(Plugin):
    name = "csv"
class TSV(CSV):
    name = "tsv"
"""
NAMES = """
seen = []
class Base:
    def __init_subclass__(cls):
        seen.append(cls.__name__)
"""
CHILD = "class Child(Base):\n    pass\n"


@pytest.mark.parametrize("each", [False, True], ids=["stored together", "cell by cell"])
@pytest.mark.parametrize(
    "cells",
    [[PLUGINS, READERS], [PLUGINS + READERS], [NAMES + CHILD], [NAMES, CHILD]],
    ids=[
        "base and subclasses in two cells",
        "in one cell",
        "hook writing a global",
        "hook writing a global, subclass in the next cell",
    ],
)
def test_subclass_hooks_leave_what_rerunning_leaves(
    kernels: Kernels, store: Store, cells: list[str], each: bool
) -> None:
    check = "(Plugin.registry if 'Plugin' in dir() else None, seen if 'seen' in dir() else None)"
    got, want = kernels.restored_and_rerun(store, cells, "", check, each=each)
    assert got == want


def test_restoring_a_subclass_alone_lends_its_base_only_while_it_loads(
    kernels: Kernels, store: Store
) -> None:
    first = kernels.start()
    first.run(PLUGINS + READERS)
    snapshot = store.save_namespace({"TSV": first.ns["TSV"]})  # holds its bases by value
    second = kernels.start()
    second.restore(store, snapshot)
    assert set(second.variables) == {"TSV"}
    assert second.ns["TSV"].__mro__[2].registry == {"csv": "CSV", "tsv": "TSV"}


CLASSES = {
    "instances in a later cell": (
        [
            "class Point:\n    def __init__(self, x):\n        self.x = x\n"
            "    def norm(self):\n        return abs(self.x) * scale",
            "p = Point(-2)\nps = [Point(1), p]",
        ],
        "(isinstance(p, Point), ps[1] is p, p.norm(), type(ps[0]) is Point)",
    ),
    "metaclass": (
        [
            "class Tagged(type):\n    made = []\n    def __new__(mcs, name, bases, ns):\n"
            "        cls = super().__new__(mcs, name, bases, ns)\n        cls.tag = name.lower()\n"
            "        return cls\n    def describe(cls):\n        return cls.tag * scale",
            "class Model(metaclass=Tagged):\n    pass",
        ],
        "(type(Model) is Tagged, Model.tag, Model.describe())",
    ),
    "__slots__": (
        [
            "class Vec:\n    __slots__ = ('x', 'y')\n    def __init__(self, x, y):\n"
            "        self.x, self.y = x, y\n"
            "    def dot(self):\n        return (self.x * self.y) * scale",
            "v = Vec(2, 3)",
        ],
        "(v.dot(), hasattr(v, '__dict__'), Vec.__slots__)",
    ),
    "nested class": (
        [
            "class Outer:\n    class Inner:\n        def value(self):\n            return scale",
            "i = Outer.Inner()",
        ],
        "(isinstance(i, Outer.Inner), i.value(), Outer.Inner.__qualname__)",
    ),
    "generic": (
        [
            "from typing import Generic, TypeVar\nT = TypeVar('T')\nclass Box(Generic[T]):\n"
            "    def __init__(self, item: T):\n        self.item = item",
            "b = Box[int](1)\nIntBox = Box[int]",
        ],
        "(b.item, repr(IntBox), Box.__parameters__ == (T,), IntBox.__origin__ is Box)",
    ),
    "Protocol": (
        [
            "from typing import Protocol, runtime_checkable\n@runtime_checkable\n"
            "class Sized2(Protocol):\n    def size(self) -> int: ...",
            "class Rope:\n    def size(self):\n        return 3 * scale",
        ],
        "(isinstance(Rope(), Sized2), Rope().size())",
    ),
    "NamedTuple and TypedDict": (
        [
            "from typing import NamedTuple, TypedDict\nclass Pair(NamedTuple):\n    a: int\n"
            "    b: int = 0\nclass Row(TypedDict):\n    a: int",
            "pair = Pair(1)\nrow = Row(a=1)",
        ],
        "(repr(pair), pair._replace(b=2), Pair._make([3, 4]), Row.__required_keys__, row)",
    ),
}


@pytest.mark.parametrize("case", CLASSES)
def test_classes_defined_in_one_cell_and_used_in_another(
    kernels: Kernels, store: Store, case: str
) -> None:
    cells, check = CLASSES[case]
    cells = ["scale = 2", *(textwrap.dedent(c) for c in cells)]
    got, want = kernels.restored_and_rerun(store, cells, "scale = 3", check, each=True)
    assert got == want


def test_restoring_again_in_the_kernel_that_made_the_classes(
    kernels: Kernels, store: Store
) -> None:
    """Restored in the same process, a class is the very one it was (cloudpickle tracks it),
    filled in again: its bases' hooks still run as re-running its cell would run them."""
    kernel = kernels.start()
    kernel.run(PLUGINS)
    plugins = store.save_namespace({"Plugin": kernel.ns["Plugin"]})
    kernel.run(READERS)
    readers = store.save_namespace(
        {n: kernel.ns[n] for n in ("CSV", "TSV")}, external={"Plugin": kernel.ns["Plugin"]}
    )
    csv = kernel.ns["CSV"]
    kernel.restore(store, plugins)
    assert kernel.ns["Plugin"].registry == {}  # as re-running the cell leaves it
    kernel.restore(store, readers)
    assert kernel.ns["CSV"] is csv
    assert kernel.ns["Plugin"].registry == {"csv": "CSV", "tsv": "TSV"}
