"""Patterns found beyond issue #13's about statements, changes in place and objects."""

from __future__ import annotations

from tests.patterns_support import Pattern, pattern

STATEMENTS: tuple[Pattern, ...] = (
    pattern(
        "global_statement_in_a_function",
        """
        total = 0
        # %%
        def add(v):
            global total
            total += v
        # %%
        add(5)
        # %%
        add(7)
        """,
        edit=("add(5)", "add(6)"),
        probe="print(total)",
    ),
    pattern(
        "del_of_an_attribute",
        """
        class Box:
            pass

        box = Box()
        box.a = 1
        box.b = 2
        # %%
        del box.a
        """,
        edit=("box.b = 2", "box.b = 3"),
        probe="print(sorted(vars(box).items()))",
    ),
    pattern(
        "setattr_and_getattr_by_name",
        """
        class Settings:
            pass

        settings = Settings()
        # %%
        for name, value in [('lr', 0.1), ('epochs', 3)]:
            setattr(settings, name, value)
        # %%
        lr = getattr(settings, 'lr')
        """,
        edit=("('lr', 0.1)", "('lr', 0.2)"),
        probe="print(lr, sorted(vars(settings).items()))",
    ),
    pattern(
        "attribute_augmented_assignment",
        """
        class State:
            def __init__(self):
                self.x = 0

        s = State()
        # %%
        s.x += 1
        # %%
        s.x += 20
        """,
        edit=("s.x += 1", "s.x += 2"),
        probe="print(s.x)",
    ),
    pattern(
        "walrus_in_a_comprehension",
        """
        total = 0
        # %%
        running = [total := total + v for v in range(4)]
        """,
        edit=("total = 0", "total = 100"),
        probe="print(total, running)",
    ),
    pattern(
        "comprehension_with_side_effects",
        """
        out = []
        # %%
        [out.append(i * i) for i in range(3)];
        """,
        edit=("range(3)", "range(4)"),
        probe="print(out)",
    ),
    pattern(
        "top_level_await",
        """
        import asyncio

        async def fetch(v):
            await asyncio.sleep(0)
            return v * 2
        # %%
        got = await fetch(21)
        """,
        edit=("v * 2", "v * 3"),
        probe="print(got)",
    ),
    pattern(
        "error_after_a_partial_assignment",
        """
        x = 1
        # %%
        x = 2
        raise RuntimeError('boom')
        # %%
        y = x * 10
        """,
        tags={1: ("raises-exception",)},
        edit=("x = 1", "x = 5"),
        probe="print(x, y)",
    ),
)

IN_PLACE: tuple[Pattern, ...] = (
    pattern(
        "pandas_inplace_methods",
        """
        import pandas as pd
        df = pd.DataFrame({'a': [3, 1, 2], 'b': [1.0, None, 3.0]})
        # %%
        df.sort_values('a', inplace=True)
        # %%
        df.fillna(0, inplace=True)
        """,
        edit=("[3, 1, 2]", "[2, 3, 1]"),
        probe="print(df.to_dict('list'))",
    ),
    pattern(
        "dataframe_pop",
        """
        import pandas as pd
        df = pd.DataFrame({'a': [1, 2], 'b': [3, 4]})
        # %%
        b = df.pop('b')
        """,
        edit=("[3, 4]", "[5, 6]"),
        probe="print(list(df.columns), b.tolist())",
    ),
    pattern(
        "numpy_out_argument",
        """
        import numpy as np
        a = np.arange(4)
        # %%
        np.add(a, 1, out=a);
        """,
        edit=("np.arange(4)", "np.arange(1, 5)"),
        probe="print(a.tolist())",
    ),
    pattern(
        "numpy_ellipsis_assignment",
        """
        import numpy as np
        a = np.zeros(3)
        # %%
        a[...] = 7
        """,
        edit=("np.zeros(3)", "np.zeros(4)"),
        probe="print(a.tolist())",
    ),
    pattern(
        "numpy_view_written_through",
        """
        import numpy as np
        base = np.arange(6)
        view = base[:3]
        # %%
        view[:] = 0
        """,
        edit=("np.arange(6)", "np.arange(1, 7)"),
        probe="print(base.tolist(), view.tolist(), np.shares_memory(base, view))",
    ),
    pattern(
        "alias_sorted_in_place",
        """
        a = [3, 1, 2]
        b = a
        # %%
        a.sort()
        """,
        edit=("[3, 1, 2]", "[9, 7, 8]"),
        probe="print(a, b, a is b)",
    ),
    pattern(
        "heapq_on_a_list",
        """
        import heapq
        heap = []
        # %%
        heapq.heappush(heap, 3)
        heapq.heappush(heap, 1)
        # %%
        smallest = heapq.heappop(heap)
        """,
        edit=("heappush(heap, 3)", "heappush(heap, 0)"),
        probe="print(heap, smallest)",
    ),
    pattern(
        "random_shuffle_in_place",
        """
        import random
        random.seed(3)
        deck = list(range(6))
        # %%
        random.shuffle(deck)
        """,
        edit=("range(6)", "range(7)"),
        probe="print(deck, random.random())",
    ),
    pattern(
        "dict_view_kept_in_a_variable",
        """
        d = {'a': 1}
        keys = d.keys()
        # %%
        d['b'] = 2
        """,
        edit=("{'a': 1}", "{'a': 1, 'z': 0}"),
        probe="print(list(keys), len(keys))",
    ),
)

OBJECTS: tuple[Pattern, ...] = (
    pattern(
        "class_redefined_after_an_instance",
        """
        class A:
            def f(self):
                return 1
        # %%
        a = A()
        # %%
        class A:
            def f(self):
                return 2
        """,
        edit=("return 1", "return 10"),
        probe="print(a.f(), A().f(), isinstance(a, A))",
    ),
    pattern(
        "slots_class",
        """
        class P:
            __slots__ = ('x',)
            def __init__(self, x):
                self.x = x
        # %%
        p = P(1)
        # %%
        p.x += 1
        """,
        edit=("P(1)", "P(5)"),
        probe="print(p.x)",
    ),
    pattern(
        "enum_member_identity",
        """
        import enum

        class Color(enum.Enum):
            RED = 1
            BLUE = 2
        # %%
        favourite = Color.RED
        """,
        edit=("RED = 1", "RED = 3"),
        probe="print(favourite, favourite is Color.RED, favourite.value)",
    ),
    pattern(
        "namedtuple_defined_in_the_notebook",
        """
        from collections import namedtuple
        Pair = namedtuple('Pair', 'a b')
        # %%
        p = Pair(1, 2)
        """,
        edit=("Pair(1, 2)", "Pair(3, 4)"),
        probe="print(p, isinstance(p, Pair), p._replace(a=0))",
    ),
    pattern(
        "dataclass_with_default_factory",
        """
        from dataclasses import dataclass, field

        @dataclass
        class Config:
            name: str
            tags: list = field(default_factory=list)
        # %%
        c = Config('a')
        c.tags.append('x')
        # %%
        d = Config('b')
        """,
        edit=("Config('b')", "Config('bb')"),
        probe="print(c, d, d.tags is not c.tags)",
    ),
    pattern(
        "super_in_a_method",
        """
        class Base:
            def hello(self):
                return 'base'

        class Child(Base):
            def hello(self):
                return 'child+' + super().hello()
        # %%
        c = Child()
        """,
        edit=("return 'base'", "return 'root'"),
        probe="print(c.hello(), isinstance(c, Base))",
    ),
    pattern(
        "cached_property",
        """
        import functools

        class Data:
            @functools.cached_property
            def total(self):
                print('computing')
                return 42
        # %%
        d = Data()
        # %%
        first = d.total
        # %%
        second = d.total
        """,
        edit=("return 42", "return 43"),
        probe="print(first, second, 'total' in vars(d))",
    ),
    pattern(
        "classmethod_cache_on_the_class",
        """
        class Repo:
            _cache = {}

            @classmethod
            def get(cls, k):
                if k not in cls._cache:
                    cls._cache[k] = k * 2
                return cls._cache[k]
        # %%
        one = Repo.get(1)
        # %%
        two = Repo.get(2)
        """,
        edit=("k * 2", "k * 3"),
        probe="print(Repo._cache, one, two)",
    ),
    pattern(
        "class_list_shared_by_instances",
        """
        class Registry:
            items = []
            def add(self, x):
                self.items.append(x)
        # %%
        r = Registry()
        r.add(1)
        # %%
        Registry().add(2)
        """,
        edit=("r.add(1)", "r.add(5)"),
        probe="print(Registry.items, r.items)",
    ),
    pattern(
        "class_made_with_type",
        """
        Dyn = type('Dyn', (), {'value': 3})
        # %%
        d = Dyn()
        # %%
        Dyn.value = 4
        """,
        edit=("{'value': 3}", "{'value': 5}"),
        probe="print(d.value, Dyn.value, type(d) is Dyn)",
    ),
    pattern(
        "defaultdict_factory_reads_a_global",
        """
        from collections import defaultdict
        counts = defaultdict(lambda: START)
        # %%
        START = 10
        # %%
        counts['x'] += 1
        """,
        edit=("START = 10", "START = 20"),
        probe="print(dict(counts), counts['y'])",
    ),
    pattern(
        "itertools_count_ids",
        """
        import itertools
        ids = itertools.count(1)
        # %%
        a = next(ids)
        # %%
        b = next(ids)
        """,
        edit=("count(1)", "count(100)"),
        probe="print(a, b, next(ids))",
    ),
    pattern(
        "numpy_generator_object",
        """
        import numpy as np
        rng = np.random.default_rng(0)
        # %%
        a = rng.integers(0, 100, 3)
        # %%
        b = rng.integers(0, 100, 3)
        """,
        edit=("default_rng(0)", "default_rng(1)"),
        probe="print(a.tolist(), b.tolist(), rng.integers(0, 100, 3).tolist())",
    ),
    pattern(
        "function_source_after_restore",
        """
        def area(r):
            return 3 * r * r
        # %%
        a = area(2)
        """,
        edit=("3 * r * r", "3.14 * r * r"),
        probe="import inspect\nprint(inspect.getsource(area))\nprint(a)",
    ),
    pattern(
        "traceback_through_a_restored_function",
        """
        def ratio(a, b):
            return a / b
        # %%
        r = ratio(1, 2)
        """,
        edit=("ratio(1, 2)", "ratio(1, 4)"),
        probe="""
        import traceback
        try:
            ratio(1, 0)
        except ZeroDivisionError:
            print(traceback.format_exc().splitlines()[-3:])
        print(r)
        """,
    ),
    pattern(
        "custom_repr_html",
        """
        class Card:
            def __init__(self, title):
                self.title = title
            def _repr_html_(self):
                return f'<b>{self.title}</b>'
        # %%
        card = Card('hello')
        # %%
        card
        """,
        edit=("Card('hello')", "Card('bye')"),
        probe="print(card.title)",
    ),
)
