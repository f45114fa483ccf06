"""Restored notebook functions read the notebook's live globals, wherever they sit, as the
originals did; library functions keep reading their own modules' globals."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from nbcellar.store import Store
from nbcellar.store.functions import bind_functions
from tests.store.conftest import Kernels

# A cell defining functions, and an expression reading them after ``scale = 3``.
WHERE_FUNCTIONS_SIT = {
    "variable": ("def f(x):\n    return x * scale", "f(1)"),
    "decorator closure": (
        """
        import functools
        def logged(func):
            @functools.wraps(func)
            def wrapper(*args):
                return ("logged", func(*args))
            return wrapper

        @logged
        def f(x):
            return x * scale
        """,
        "f(1)",
    ),
    "dict registry": ("handlers = {'double': lambda x: 2 * x * scale}", "handlers['double'](1)"),
    "list of callbacks": (
        "def f(x):\n    return x * scale\ncallbacks = [f, lambda x: -x * scale]",
        "[c(1) for c in callbacks]",
    ),
    "functools.partial": (
        "import functools\ndef f(x, y):\n    return (x + y) * scale\np = functools.partial(f, 1)",
        "p(1)",
    ),
    "class attribute": (
        "def f(x):\n    return x * scale\nclass Pipeline:\n    steps = [f]",
        "[s(1) for s in Pipeline.steps]",
    ),
    "instance holding a callback": (
        """
        class Button:
            def __init__(self, on_click):
                self.on_click = on_click
        button = Button(lambda: scale * 10)
        """,
        "button.on_click()",
    ),
    "bound method": (
        "class Model:\n    def predict(self, x):\n        return x * scale\n"
        "predict = Model().predict",
        "predict(2)",
    ),
    "lambda defaults": (
        "fs = [lambda x, k=k: x * k * scale for k in range(3)]",
        "[f(1) for f in fs]",
    ),
    "property and setter": (
        """
        class Box:
            @property
            def size(self):
                return self._size * scale
            @size.setter
            def size(self, value):
                self._size = value
        box = Box()
        box.size = 2
        """,
        "box.size",
    ),
    "staticmethod and classmethod": (
        """
        class Units:
            @staticmethod
            def meters(x):
                return x * scale
            @classmethod
            def name(cls):
                return cls.__name__ * scale
        """,
        "(Units.meters(1), Units.name())",
    ),
    "closure of a method": (
        "class Maker:\n    def make(self):\n        def inner():\n            return scale\n"
        "        return inner\nmade = Maker().make()",
        "made()",
    ),
    "contextlib.contextmanager": (
        """
        import contextlib
        @contextlib.contextmanager
        def scaled(x):
            yield x * scale
        """,
        "scaled(2).__enter__()",
    ),
    "enum method": (
        "import enum\nclass Size(enum.Enum):\n    S = 1\n    def scaled(self):\n"
        "        return self.value * scale\nsize = Size.S",
        "(size.scaled(), size is Size.S)",
    ),
    "dataclass method": (
        "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\n"
        "    def scaled(self):\n        return self.x * scale\np = P(2)",
        "(repr(p), p.scaled(), p == P(2))",
    ),
    "super() in a subclass": (
        "class A:\n    def f(self):\n        return scale\nclass B(A):\n"
        "    def f(self):\n        return super().f() + 1\nb = B()",
        "b.f()",
    ),
}


@pytest.mark.parametrize("where", WHERE_FUNCTIONS_SIT)
def test_a_later_change_of_a_global_reaches_restored_functions(
    kernels: Kernels, store: Store, where: str
) -> None:
    cell, check = WHERE_FUNCTIONS_SIT[where]
    got, want = kernels.restored_and_rerun(
        store, ["scale = 2", textwrap.dedent(cell)], "scale = 3", check
    )
    assert got == want


def test_a_function_in_a_container_writes_the_live_globals(kernels: Kernels, store: Store) -> None:
    cell = "counter = 0\ndef bump():\n    global counter\n    counter += 1\nhandlers = [bump]"
    got, want = kernels.restored_and_rerun(
        store, [cell], "handlers[0]()\nbump()", "(counter, handlers[0] is bump)"
    )
    assert got == want == (2, True)


def test_restoring_writes_nothing_else_into_the_namespace(kernels: Kernels, store: Store) -> None:
    first = kernels.start()
    first.run("helper = lambda: 1\nlimit = 5\ndef f():\n    return helper() + limit")
    snapshot = store.save_namespace({"f": first.ns["f"]})
    second = kernels.start()
    second.restore(store, snapshot)
    assert set(second.variables) == {"f"}
    with pytest.raises(NameError, match="helper"):  # as it would, re-run alone
        second.ns["f"]()


def test_dataclass_instances_work_after_a_restore(kernels: Kernels, store: Store) -> None:
    cell = """
    from dataclasses import dataclass, field
    @dataclass(frozen=True, order=True)
    class Point:
        x: int
        tags: tuple = field(default=())
    @dataclass
    class Node:
        name: str
        children: list = field(default_factory=list)
    p = Point(1)
    tree = Node("root", [Node("leaf")])
    """
    check = "(repr(p), p < Point(2), hash(p) == hash(Point(1)), repr(tree), repr(Node('n')))"
    got, want = kernels.restored_and_rerun(store, [textwrap.dedent(cell)], "", check)
    assert got == want


def test_attrs_generated_methods_keep_their_own_globals(kernels: Kernels, store: Store) -> None:
    pytest.importorskip("attrs", reason="attrs is an optional library of the notebooks tested")
    cell = """
    import attrs
    @attrs.define
    class Run:
        name: str
        steps: int = 0
    @attrs.frozen
    class Key:
        a: int
    run = Run("r")
    """
    check = "(repr(run), run == Run('r'), repr(Key(1)), hash(Key(1)) == hash(Key(1)))"
    got, want = kernels.restored_and_rerun(store, [textwrap.dedent(cell)], "", check)
    assert got == want


def test_a_function_and_a_dict_holding_it_hold_the_same_one(kernels: Kernels, store: Store) -> None:
    first = kernels.start()
    first.run("def f():\n    return 1\nregistry = {'f': f}")
    snapshot = store.save_namespace(first.variables)
    second = kernels.start()
    second.restore(store, snapshot)
    assert second.ns["registry"]["f"] is second.ns["f"]


TOOLS = """
import functools
FACTOR = 2

def _label(value):
    return f"{value} x{FACTOR}"

def scaled(func):
    @functools.wraps(func)
    def wrapper(*args):
        return _label(func(*args) * FACTOR)
    return wrapper
"""


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A project module with a decorator, importable as ``tools``."""
    (tmp_path / "tools.py").write_text(TOOLS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tools", raising=False)
    import tools

    return tools


def test_a_library_decorator_keeps_reading_its_module(
    kernels: Kernels, store: Store, tools: Any
) -> None:
    first = kernels.start()
    first.run("import tools\nscale = 1\n@tools.scaled\ndef g(x):\n    return x * scale")
    snapshot = store.save_namespace(first.variables)
    second = kernels.start()
    second.restore(store, snapshot)
    tools.FACTOR = 5  # the module's live globals reach the wrapper, as they reached it before
    second.run("scale = 3")
    assert second.ns["g"](1) == "15 x5"  # 1 * scale 3 * FACTOR 5


def test_a_module_that_lost_a_name_a_stored_function_read_makes_it_unloadable(
    kernels: Kernels, store: Store, tools: Any
) -> None:
    first = kernels.start()
    first.run("import tools\n@tools.scaled\ndef g(x):\n    return x")
    snapshot = store.save_namespace({"g": first.ns["g"]})
    del tools.FACTOR  # the module was edited since: the stored wrapper's code does not fit it
    kernels.start()
    restored = store.restore(snapshot.id, namespace={})
    assert "FACTOR" in restored.missing["g"]  # (not a NameError once called)


def test_values_loaded_without_a_namespace_are_bound_afterwards(
    kernels: Kernels, store: Store
) -> None:
    first = kernels.start()
    first.run(
        "scale = 2\ndef f():\n    return scale\nclass C:\n    def m(self):\n        return scale"
    )
    snapshot = store.save_namespace(first.variables)
    second = kernels.start()
    values = store.load_namespace(snapshot.id)  # functions read copies of their globals
    second.ns.update(bind_functions(values, second.ns))
    second.run("scale = 3")
    assert (second.ns["f"](), second.ns["C"]().m()) == (3, 3)
