"""Patterns found beyond issue #13's about state inside objects: calls through values that hold
what they change, objects that cannot be stored, objects that say how they pickle."""

from __future__ import annotations

from tests.patterns_support import Pattern, pattern

STATE_INSIDE: tuple[Pattern, ...] = (
    pattern(
        "bound_builtin_method_called",
        """
        log = []
        push = log.append
        # %%
        push(3)
        """,
        edit=("push(3)", "push(4)"),
        probe="print(log, push.__self__ is log)",
    ),
    pattern(
        "bound_notebook_method_called",
        """
        class Counter:
            def __init__(self):
                self.n = 0
            def increment(self):
                self.n += 1
        c = Counter()
        inc = c.increment
        # %%
        inc()
        # %%
        inc()
        """,
        edit=("self.n = 0", "self.n = 10"),
        probe="print(c.n, inc.__self__ is c)",
    ),
    pattern(
        "partial_holding_a_list",
        """
        import functools
        acc = []
        add = functools.partial(list.append, acc)
        # %%
        add(1)
        # %%
        add(2)
        """,
        edit=("add(1)", "add(5)"),
        probe="print(acc, add.args[0] is acc)",
    ),
    pattern(
        "weak_value_dictionary",
        """
        import weakref

        class Node:
            pass

        node = Node()
        reg = weakref.WeakValueDictionary()
        # %%
        reg['n'] = node
        # %%
        found = reg.get('n') is node
        """,
        edit=("    pass", "    tag = 1"),
        probe="print(found, reg.get('n') is node, len(reg))",
    ),
    pattern(
        "random_instance_drawn_in_later_cells",
        """
        import random
        rng = random.Random(0)
        # %%
        a = rng.random()
        # %%
        b = rng.randint(0, 100)
        """,
        edit=("Random(0)", "Random(1)"),
        probe="print(a, b, rng.random())",
    ),
    pattern(
        "pandas_attrs",
        """
        import pandas as pd
        df = pd.DataFrame({'x': [1, 2]})
        # %%
        df.attrs['source'] = 'sensor'
        # %%
        src = df.attrs['source']
        """,
        edit=("'sensor'", "'lab'"),
        probe="print(df.attrs, src)",
    ),
    pattern(
        "object_holding_a_lock",
        """
        import threading

        class Box:
            def __init__(self):
                self.lock = threading.Lock()
                self.items = []
            def add(self, x):
                with self.lock:
                    self.items.append(x)

        box = Box()
        # %%
        box.add(1)
        # %%
        box.add(2)
        """,
        edit=("box.add(1)", "box.add(5)"),
        probe="print(box.items)",
    ),
    pattern(
        "queue_put_then_get",
        """
        import queue
        q = queue.Queue()
        # %%
        q.put(1)
        q.put(2)
        # %%
        first = q.get()
        """,
        edit=("q.put(2)", "q.put(3)"),
        probe="print(first, q.qsize())",
    ),
    pattern(
        "property_setter_logs_to_a_global",
        """
        LOG = []

        class T:
            @property
            def v(self):
                return self._v
            @v.setter
            def v(self, x):
                LOG.append(x)
                self._v = x

        t = T()
        # %%
        t.v = 3
        # %%
        t.v = 4
        """,
        edit=("t.v = 3", "t.v = 5"),
        probe="print(LOG, t.v)",
    ),
    pattern(
        "file_read_line_by_line",
        """
        f = open('data.txt')
        # %%
        first = f.readline()
        # %%
        second = f.readline()
        """,
        files={"data.txt": "a\nb\nc\n"},
        edit=("first = f.readline()", "first = f.readline()\nskipped = f.readline()"),
        probe="print(repr(first), repr(second), repr(f.readline()))",
    ),
    pattern(
        "reduce_returns_the_constructor",
        """
        class Conf:
            def __init__(self, n):
                self.n = n
                self.seen = []
            def __reduce__(self):
                return (Conf, (self.n,))

        c = Conf(2)
        # %%
        c.seen.append(1)
        """,
        edit=("Conf(2)", "Conf(3)"),
        probe="print(c.n, c.seen)",
    ),
)
