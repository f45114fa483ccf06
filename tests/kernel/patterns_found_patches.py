"""Patterns found beyond issue #13's: patches of library and project modules and classes."""

from __future__ import annotations

from tests.patterns_support import Edit, Pattern, pattern

PATCHES: tuple[Pattern, ...] = (
    pattern(
        "method_added_to_a_dataframe",
        """
        import pandas as pd

        def total(self):
            return int(self.sum().sum())

        pd.DataFrame.total = total
        # %%
        df = pd.DataFrame({'a': [1, 2], 'b': [3, 4]})
        # %%
        t = df.total()
        """,
        edit=("int(self.sum().sum())", "int(self.sum().sum()) * 10"),
        probe="print(t, hasattr(pd.DataFrame, 'total'))",
    ),
    pattern(
        "setattr_on_a_library_module",
        """
        import json
        setattr(json, 'INDENT', 2)
        # %%
        out = json.dumps({'a': 1}, indent=json.INDENT)
        """,
        edit=("'INDENT', 2)", "'INDENT', 4)"),
        probe="print(repr(out), getattr(json, 'INDENT', None))",
    ),
    pattern(
        "pandas_accessor_registered",
        """
        import pandas as pd

        @pd.api.extensions.register_dataframe_accessor('spread')
        class Spread:
            def __init__(self, frame):
                self._frame = frame

            def of(self, column):
                return int(self._frame[column].max() - self._frame[column].min())
        # %%
        df = pd.DataFrame({'x': [1, 5, 3]})
        # %%
        s = df.spread.of('x')
        """,
        edit=("max() - self._frame", "max() + self._frame"),
        probe="print(s, hasattr(pd.DataFrame, 'spread'), df.spread.of('x'))",
    ),
    pattern(
        "class_attribute_of_a_project_class_set",
        """
        import tools
        tools.Model.SCALE = 3
        # %%
        r = tools.Model().scaled(2)
        """,
        files={
            "tools.py": "class Model:\n    SCALE = 1\n\n    def scaled(self, v):\n"
            "        return v * self.SCALE\n"
        },
        edit=("SCALE = 3", "SCALE = 5"),
        probe="print(r, tools.Model.SCALE)",
    ),
    pattern(
        "library_patched_by_a_notebook_function",
        """
        import math

        def install(factor):
            math.TAU_TIMES = factor * math.tau
        # %%
        install(2)
        # %%
        t = round(math.TAU_TIMES, 3)
        """,
        edit=("install(2)", "install(3)"),
        probe="print(t, round(getattr(math, 'TAU_TIMES', 0), 3))",
    ),
    pattern(
        "removed_numpy_alias_put_back",
        """
        import numpy as np
        np.float = float
        # %%
        x = np.float('3.5')
        """,
        edit=("np.float = float", "np.float = str"),
        probe="print(repr(x), np.float)",
    ),
    pattern(
        "copyreg_reducer_registered",
        """
        import copyreg, pickle

        class Point:
            def __init__(self, x):
                self.x = x

        def reduce_point(p):
            return (Point, (p.x * 10,))

        copyreg.pickle(Point, reduce_point)
        # %%
        data = pickle.loads(pickle.dumps(Point(1))).x
        """,
        edit=("p.x * 10", "p.x * 100"),
        probe="print(data, pickle.loads(pickle.dumps(Point(2))).x)",
    ),
    pattern(
        "tool_module_constant_deleted",
        """
        import tools
        del tools.LIMIT
        # %%
        has = hasattr(tools, 'LIMIT')
        """,
        files={"tools.py": "LIMIT = 10\nOTHER = 1\n"},
        edit=("del tools.LIMIT", "del tools.OTHER"),
        probe="print(has, hasattr(tools, 'LIMIT'), hasattr(tools, 'OTHER'))",
    ),
    pattern(
        "tqdm_pandas_registered",
        """
        import pandas as pd
        from tqdm.auto import tqdm
        tqdm.pandas(disable=True)
        # %%
        df = pd.DataFrame({'x': [1, 2, 3]})
        # %%
        doubled = df['x'].progress_apply(lambda v: v * 2).tolist()
        """,
        edit=("v * 2", "v * 3"),
        probe="print(doubled, hasattr(pd.Series, 'progress_apply'))",
    ),
)

MODULES: tuple[Pattern, ...] = (
    pattern(
        "notebook_function_set_into_a_project_module",
        """
        import tools

        def louder(s):
            return s.upper()

        tools.formatter = louder
        # %%
        out = tools.shout('hi')
        """,
        files={
            "tools.py": "def formatter(s):\n    return s\n\n\ndef shout(s):\n"
            "    return formatter(s) + '!'\n"
        },
        edit=("s.upper()", "s.title()"),
        probe="print(out, tools.shout('ok'))",
    ),
    pattern(
        "autoreload_of_a_function_imported_by_name",
        """
        %load_ext autoreload
        %autoreload 2
        # %%
        from tools import value
        # %%
        v = value()
        """,
        files={"tools.py": "def value():\n    return 1\n"},
        edit=Edit("return 1", "return 2", "tools.py"),
        live_from=2,
        probe="print(v, value())",
    ),
    pattern(
        "importlib_reload_of_a_function_imported_by_name",
        """
        import importlib
        import tools
        from tools import Scaler
        # %%
        importlib.reload(tools)
        from tools import Scaler
        # %%
        r = Scaler().apply(2)
        """,
        files={"tools.py": "class Scaler:\n    def apply(self, v):\n        return v * 2\n"},
        edit=Edit("v * 2", "v * 5", "tools.py"),
        live_from=1,
        probe="print(r, Scaler().apply(1))",
    ),
)
