"""The patterns issue #13 names about objects: state inside them, changes through calls, inputs
keys miss, functions inside values, cells re-run for a value that cannot be stored."""

from __future__ import annotations

from tests.patterns_support import Edit, Pattern, pattern

INSIDE_OBJECTS: tuple[Pattern, ...] = (
    pattern(
        "closure_counter",
        """
        def make_counter():
            count = 0
            def step():
                nonlocal count
                count += 1
                return count
            return step
        # %%
        counter = make_counter()
        # %%
        counter()
        counter()
        # %%
        print(counter())
        """,
        edit=("counter()\ncounter()", "counter()"),
        probe="print(counter())",
    ),
    pattern(
        "mutable_default_as_memo",
        """
        def fib(n, memo={}):
            if n not in memo:
                memo[n] = n if n < 2 else fib(n - 1) + fib(n - 2)
            return memo[n]
        # %%
        x = fib(10)
        """,
        edit=("fib(10)", "fib(12)"),
        probe="print(x, len(fib.__defaults__[0]))",
    ),
    pattern(
        "lru_cache_function",
        """
        import functools

        @functools.lru_cache(maxsize=None)
        def square(n):
            print('computing', n)
            return n * n
        # %%
        a = square(3)
        # %%
        b = square(3) + square(4)
        """,
        edit=("square(4)", "square(5)"),
        probe="info = square.cache_info()\nprint(a, b, info.hits, info.currsize)",
    ),
    pattern(
        "class_attribute_through_instance",
        """
        class Widget:
            n = 0
            def __init__(self):
                type(self).n += 1
        # %%
        w1 = Widget()
        # %%
        w2 = Widget()
        print(Widget.n)
        """,
        edit=("w1 = Widget()", "w1 = Widget()\nw0 = Widget()"),
        probe="print(Widget.n)",
    ),
    pattern(
        "getstate_drops_a_cache",
        """
        class Model:
            def __init__(self, k):
                self.k = k
                self._cache = {}
            def __getstate__(self):
                return dict(self.__dict__, _cache={})
            def score(self, x):
                if x not in self._cache:
                    self._cache[x] = x * self.k
                return self._cache[x]
        # %%
        m = Model(3)
        m.score(2)
        # %%
        print(len(m._cache))
        """,
        edit=("Model(3)", "Model(4)"),
        probe="print(len(m._cache), m.score(2))",
    ),
    pattern(
        "weakref_to_a_variable",
        """
        import weakref

        class Node:
            pass
        # %%
        node = Node()
        ref = weakref.ref(node)
        # %%
        alive = ref() is node
        """,
        edit=("    pass", "    tag = 1"),
        probe="print(alive, ref() is node)",
    ),
    pattern(
        "generator_advanced_in_later_cells",
        """
        def numbers():
            yield from range(10)
        # %%
        it = numbers()
        # %%
        first = next(it)
        # %%
        second = next(it)
        """,
        edit=("range(10)", "range(5, 15)"),
        probe="print(first, second, next(it))",
    ),
    pattern(
        "iterator_advanced_in_later_cells",
        """
        it = iter([10, 20, 30, 40])
        # %%
        a = next(it)
        # %%
        b = next(it)
        """,
        edit=("[10, 20, 30, 40]", "[11, 21, 31, 41]"),
        probe="print(a, b, list(it))",
    ),
    pattern(
        "two_names_share_an_unnamed_object",
        """
        a = {'x': [1, 2]}
        b = {'y': a['x']}
        # %%
        a['x'].append(3)
        """,
        edit=("[1, 2]", "[5, 6]"),
        probe="print(a, b, a['x'] is b['y'])",
    ),
)

UNSEEN_CALLS: tuple[Pattern, ...] = (
    pattern(
        "callable_object",
        """
        class Acc:
            def __init__(self):
                self.total = 0
            def __call__(self, v):
                self.total += v
                return self.total
        # %%
        acc = Acc()
        # %%
        acc(5)
        # %%
        acc(7)
        print(acc.total)
        """,
        edit=("acc(5)", "acc(6)"),
        probe="print(acc.total)",
    ),
    pattern(
        "closure_accumulator",
        """
        def make_acc():
            items = []
            def add(v):
                items.append(v)
                return len(items)
            return add
        # %%
        acc = make_acc()
        # %%
        acc(5)
        # %%
        n = acc(7)
        """,
        edit=("acc(5)", "acc(6)"),
        probe="print(n, acc.__closure__[0].cell_contents)",
    ),
    pattern(
        "iterator_consumed_by_for",
        """
        it = iter(range(6))
        # %%
        for v in it:
            if v == 2:
                break
        # %%
        rest = list(it)
        """,
        edit=("v == 2", "v == 3"),
        probe="print(v, rest)",
    ),
    pattern(
        "iterator_consumed_by_zip",
        """
        letters = iter('abcd')
        # %%
        pairs = list(zip(letters, [1, 2]))
        # %%
        left = list(letters)
        """,
        edit=("[1, 2]", "[1, 2, 3]"),
        probe="print(pairs, left)",
    ),
    pattern(
        "method_appends_to_a_notebook_list",
        """
        registry = []

        class Plugin:
            def __init__(self, name):
                self.name = name
                self.registry = registry
            def register(self):
                self.registry.append(self.name)
        # %%
        p = Plugin('a')
        p.register()
        # %%
        q = Plugin('b')
        q.register()
        """,
        edit=("Plugin('a')", "Plugin('z')"),
        probe="print(registry, p.registry is registry)",
    ),
    pattern(
        "class_counter_changed_by_init",
        """
        class Job:
            counter = 0
            def __init__(self):
                Job.counter += 1
                self.id = Job.counter
        # %%
        j1 = Job()
        # %%
        j2 = Job()
        """,
        edit=("j1 = Job()", "j1 = Job()\nj0 = Job()"),
        probe="print(Job.counter, j1.id, j2.id)",
    ),
    pattern(
        "lambda_passed_to_apply",
        """
        import pandas as pd
        df = pd.DataFrame({'x': [1, 2, 3]})
        seen = []
        # %%
        df['y'] = df['x'].apply(lambda v: seen.append(v) or v * 2)
        """,
        edit=("[1, 2, 3]", "[4, 5]"),
        probe="print(df['y'].tolist(), seen)",
    ),
    pattern(
        "function_shadowing_sorted",
        """
        values = [3, 1, 2]
        # %%
        def sorted(xs):
            return [x * 10 for x in xs]
        # %%
        out = sorted(values)
        """,
        edit=("x * 10", "x * 100"),
        probe="print(out)",
    ),
)

MISSED_INPUTS: tuple[Pattern, ...] = (
    pattern(
        "method_reads_a_global",
        """
        SCALE = 2
        # %%
        class Model:
            def predict(self, x):
                return x * SCALE
        # %%
        m = Model()
        # %%
        pred = m.predict(10)
        """,
        edit=("SCALE = 2", "SCALE = 3"),
        probe="print(pred, m.predict(1))",
    ),
    pattern(
        "function_called_through_a_dict",
        """
        K = 2
        # %%
        def double(v):
            return v * K
        # %%
        ops = {'double': double}
        # %%
        r = ops['double'](5)
        """,
        edit=("K = 2", "K = 3"),
        probe="print(r)",
    ),
    pattern(
        "function_called_through_an_alias",
        """
        K = 2
        # %%
        def times(v):
            return v * K
        f = times
        # %%
        r = f(5)
        """,
        edit=("K = 2", "K = 3"),
        probe="print(r)",
    ),
    pattern(
        "functools_partial",
        """
        import functools
        K = 2
        # %%
        def mul(v, by):
            return v * by * K
        triple = functools.partial(mul, by=3)
        # %%
        r = triple(5)
        """,
        edit=("K = 2", "K = 3"),
        probe="print(r)",
    ),
    pattern(
        "dataframe_query_at_variable",
        """
        import pandas as pd
        df = pd.DataFrame({'a': range(10)})
        # %%
        thr = 5
        # %%
        sel = df.query('a > @thr')
        """,
        edit=("thr = 5", "thr = 7"),
        probe="print(len(sel), sel['a'].tolist())",
    ),
    pattern(
        "dir_listing",
        """
        x1 = 1
        # %%
        names = sorted(n for n in dir() if n.startswith('x'))
        """,
        edit=("x1 = 1", "x1 = 1\nx2 = 2"),
        probe="print(names)",
    ),
    pattern(
        "project_module_imported_inside_a_function",
        """
        def compute(v):
            import helpers
            return v * helpers.FACTOR
        # %%
        r = compute(5)
        """,
        files={"helpers.py": "FACTOR = 2\n"},
        edit=Edit("FACTOR = 2", "FACTOR = 3", "helpers.py"),
        probe="print(r)",
    ),
)

FUNCTIONS_INSIDE_VALUES: tuple[Pattern, ...] = (
    pattern(
        "decorator_closure",
        """
        def scaled(fn):
            def wrapper(*args):
                return fn(*args) * RATE
            return wrapper
        # %%
        @scaled
        def base(v):
            return v + OFFSET
        # %%
        RATE = 2
        OFFSET = 1
        # %%
        r = base(4)
        """,
        edit=("RATE = 2", "RATE = 3"),
        probe="print(r, base(1))",
    ),
    pattern(
        "registry_of_functions",
        """
        HANDLERS = {}

        def handler(name):
            def deco(fn):
                HANDLERS[name] = fn
                return fn
            return deco
        # %%
        @handler('greet')
        def greet(who):
            return f'{PREFIX} {who}'
        # %%
        PREFIX = 'hello'
        # %%
        msg = HANDLERS['greet']('ann')
        """,
        edit=("'hello'", "'hi'"),
        probe="print(msg, HANDLERS['greet']('bob'), HANDLERS['greet'] is greet)",
    ),
    pattern(
        "dict_of_functions",
        """
        ops = {'inc': lambda v: v + STEP, 'dec': lambda v: v - STEP}
        # %%
        STEP = 1
        # %%
        r = ops['inc'](10)
        """,
        edit=("STEP = 1", "STEP = 5"),
        probe="print(r, ops['dec'](10))",
    ),
)

REPLAYED_CELLS: tuple[Pattern, ...] = (
    pattern(
        "weakref_in_a_replayed_cell",
        """
        import weakref

        class Thing:
            pass

        thing = Thing()
        ref = weakref.ref(thing)
        sizes = list(range(5))
        # %%
        total = sum(sizes)
        """,
        edit=("range(5)", "range(6)"),
        probe="print(ref() is thing, total)",
    ),
    pattern(
        "thread_in_a_replayed_cell",
        """
        import threading
        results = []
        go = threading.Event()

        def work():
            go.wait()
            results.append(42)

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        # %%
        go.set()
        worker.join(5)
        print(results)
        """,
        edit=("append(42)", "append(43)"),
        probe="print(results, worker.is_alive())",
    ),
)
