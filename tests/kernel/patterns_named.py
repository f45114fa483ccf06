"""The everyday patterns issue #13 names, as small notebooks (see tests/patterns_support.py)."""

from __future__ import annotations

from tests.kernel.patterns_named_objects import (
    FUNCTIONS_INSIDE_VALUES,
    INSIDE_OBJECTS,
    MISSED_INPUTS,
    REPLAYED_CELLS,
    UNSEEN_CALLS,
)
from tests.patterns_support import Edit, Pattern, pattern

SILENTLY_WRONG: tuple[Pattern, ...] = (
    pattern(
        "list_augmented_then_rebound",
        """
        a = [1, 2, 3]
        # %%
        a += [4]
        # %%
        total = sum(a)
        """,
        edit=("a = [1, 2, 3]", "a = [1, 2]"),
        probe="print(a, total)",
    ),
    pattern(
        "dataframe_augmented_in_place",
        """
        import pandas as pd
        df = pd.DataFrame({'x': [1, 2, 3]})
        # %%
        df += 1
        # %%
        total = int(df['x'].sum())
        """,
        edit=("[1, 2, 3]", "[10, 20, 30]"),
        probe="print(df['x'].tolist(), total)",
    ),
    pattern(
        "sklearn_fit_returns_self",
        """
        import numpy as np
        from sklearn.linear_model import LinearRegression
        X = np.arange(10.0).reshape(-1, 1)
        y = 3 * X.ravel() + 1
        # %%
        model = LinearRegression()
        # %%
        model = model.fit(X, y)
        """,
        edit=("3 * X", "5 * X"),
        probe="""
        print(hasattr(model, 'coef_'))
        print(np.round(model.coef_, 6).tolist(), round(float(model.intercept_), 6))
        """,
    ),
    pattern(
        "function_changes_and_returns_its_argument",
        """
        import pandas as pd
        df = pd.DataFrame({'x': [1, 2, 3]})
        # %%
        def add_features(frame):
            frame['x2'] = frame['x'] ** 2
            return frame
        # %%
        df = add_features(df)
        """,
        edit=("** 2", "** 3"),
        probe="print(sorted(df.columns), df['x2'].tolist())",
    ),
    pattern(
        "dataclass_instance_repr",
        """
        from dataclasses import dataclass

        @dataclass
        class Point:
            x: int
            y: int
        # %%
        p = Point(1, 2)
        # %%
        print(p)
        """,
        edit=("p = Point(1, 2)", "p = Point(3, 4)"),
        probe="print(repr(p), p == Point(p.x, p.y))",
    ),
    pattern(
        "autoreload_after_module_edit",
        """
        %load_ext autoreload
        %autoreload 2
        # %%
        import tools
        # %%
        print(tools.value())
        # %%
        doubled = 2 * tools.value()
        """,
        files={"tools.py": "def value():\n    return 1\n"},
        edit=Edit("return 1", "return 2", "tools.py"),
        live_from=2,  # the cells using the module, as autoreload is there for
        probe="print(tools.value(), doubled)",
    ),
    pattern(
        "importlib_reload_after_module_edit",
        """
        import importlib
        import tools
        # %%
        tools = importlib.reload(tools)
        # %%
        result = tools.scaled(5)
        """,
        files={"tools.py": "SCALE = 1\n\ndef scaled(v):\n    return v * SCALE\n"},
        edit=Edit("SCALE = 1", "SCALE = 3", "tools.py"),
        live_from=1,  # from the reload on, as a user re-runs it
        probe="print(result, tools.SCALE)",
    ),
)

OUTSIDE_GLOBALS: tuple[Pattern, ...] = (
    pattern(
        "sys_path_append_then_import",
        """
        import sys
        sys.path.append('src')
        # %%
        import tools
        # %%
        print(tools.double(21))
        """,
        files={
            "src/tools.py": "def double(v):\n    return 2 * v\n",
            "lib/tools.py": "def double(v):\n    return 3 * v\n",
        },
        edit=("'src'", "'lib'"),
        probe="print(sys.path[-1], tools.double(2))",
    ),
    pattern(
        "os_environ_set_then_read",
        """
        import os
        os.environ['MODE'] = 'fast'
        # %%
        mode = os.environ.get('MODE')
        # %%
        print(mode)
        """,
        edit=("'fast'", "'slow'"),
        probe="print(os.environ.get('MODE'), mode)",
    ),
    pattern(
        "os_chdir_then_relative_read",
        """
        import os
        os.chdir('data')
        # %%
        values = open('values.txt').read().split()
        # %%
        print(values)
        """,
        files={"data/values.txt": "1\n2\n", "other/values.txt": "3\n"},
        edit=("'data'", "'other'"),
        probe="print(os.path.basename(os.getcwd()), values)",
    ),
    pattern(
        "env_magic_then_read",
        """
        %env MODE=fast
        # %%
        import os
        mode = os.environ['MODE']
        # %%
        print(mode)
        """,
        edit=("MODE=fast", "MODE=slow"),
        probe="print(os.environ.get('MODE'), mode)",
    ),
    pattern(
        "cd_magic_then_relative_read",
        """
        %cd data
        # %%
        values = open('values.txt').read().split()
        # %%
        print(values)
        """,
        files={"data/values.txt": "1\n2\n", "other/values.txt": "3\n"},
        edit=("%cd data", "%cd other"),
        probe="import os\nprint(os.path.basename(os.getcwd()), values)",
    ),
    pattern(
        "random_seed_then_draws",
        """
        import random
        random.seed(0)
        # %%
        a = random.random()
        # %%
        b = random.randint(0, 1000)
        """,
        edit=("seed(0)", "seed(1)"),
        probe="print(a, b, random.random())",
    ),
    pattern(
        "numpy_seed_then_draws",
        """
        import numpy as np
        np.random.seed(0)
        # %%
        a = np.random.rand(3)
        # %%
        b = np.random.randint(0, 100, 5)
        """,
        edit=("seed(0)", "seed(1)"),
        probe="print(a.round(6).tolist(), b.tolist(), round(np.random.rand(), 6))",
    ),
    pattern(
        "numpy_draws_counted_upstream",
        """
        import numpy as np
        np.random.seed(0)
        # %%
        warmup = np.random.rand(2)
        # %%
        x = round(float(np.random.rand()), 6)
        """,
        edit=("rand(2)", "rand(5)"),
        probe="print(x, round(np.random.rand(), 6))",
    ),
    pattern(
        "logging_basic_config_to_stdout",
        """
        import logging, sys
        logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s',
                            stream=sys.stdout)
        # %%
        log = logging.getLogger('nb')
        log.info('hello')
        # %%
        log.debug('details')
        log.warning('careful')
        """,
        edit=("level=logging.INFO", "level=logging.DEBUG"),
        probe="""
        print(logging.getLogger().level, len(logging.getLogger().handlers))
        log.info('from the probe')
        """,
    ),
    pattern(
        "logging_handler_added",
        """
        import logging
        log = logging.getLogger('app')
        log.setLevel(logging.INFO)
        records = []

        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record.getMessage())

        log.addHandler(Keep())
        # %%
        log.info('one')
        # %%
        log.info('two')
        """,
        edit=("'one'", "'uno'"),
        probe="print(records, len(log.handlers))",
    ),
    pattern(
        "warnings_filter_ignore",
        """
        import warnings
        warnings.filterwarnings('ignore', category=UserWarning)
        # %%
        warnings.warn('noisy', UserWarning)
        print('after the warning')
        """,
        edit=("'ignore'", "'always'"),
        probe="print([(f[0], f[2].__name__) for f in warnings.filters[:1]])",
    ),
    pattern(
        "warning_shown_once",
        """
        import warnings

        def legacy():
            warnings.warn('legacy() is deprecated', UserWarning)
            return 1
        # %%
        first = legacy()
        # %%
        second = legacy() + 1
        """,
        edit=("legacy() + 1", "legacy() + 2"),
        probe="""
        registry = globals().get('__warningregistry__', {})
        print(sorted(str(k[0]) for k in registry if isinstance(k, tuple)))
        """,
    ),
    pattern(
        "pandas_set_option",
        """
        import pandas as pd
        pd.set_option('display.max_rows', 4)
        # %%
        df = pd.DataFrame({'x': range(10)})
        print(df)
        """,
        edit=("'display.max_rows', 4", "'display.max_rows', 6"),
        probe="print(pd.get_option('display.max_rows'))\nprint(df)",
    ),
    pattern(
        "numpy_set_printoptions",
        """
        import numpy as np
        np.set_printoptions(precision=2)
        # %%
        a = np.array([1 / 3, 2 / 3])
        print(a)
        """,
        edit=("precision=2", "precision=4"),
        probe="print(np.get_printoptions()['precision'], a)",
    ),
    pattern(
        "matplotlib_style_use",
        """
        import matplotlib.pyplot as plt
        plt.style.use('ggplot')
        # %%
        color = plt.rcParams['axes.facecolor']
        print(color)
        """,
        edit=("'ggplot'", "'bmh'"),
        probe="print(plt.rcParams['axes.facecolor'], color)",
    ),
    pattern(
        "matplotlib_rcparams",
        """
        import matplotlib as mpl
        mpl.rcParams['lines.linewidth'] = 3
        # %%
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots()
        (line,) = ax.plot([1, 2, 3])
        width = line.get_linewidth()
        plt.close(fig)
        """,
        edit=("= 3", "= 5"),
        probe="print(mpl.rcParams['lines.linewidth'], width)",
    ),
    pattern(
        "inline_backend_config",
        """
        %config InlineBackend.figure_formats = ['svg']
        # %%
        import matplotlib.pyplot as plt
        plt.plot([1, 2, 3])
        plt.show()
        """,
        edit=("['svg']", "['png']"),
        probe="print(sorted(get_ipython().config.InlineBackend.figure_formats))",
    ),
    pattern(
        "project_module_flag_set",
        """
        import config
        config.DEBUG = True
        # %%
        import tools
        mode = tools.mode()
        # %%
        print(mode)
        """,
        files={
            "config.py": "DEBUG = False\n",
            "tools.py": "import config\n\ndef mode():\n"
            "    return 'debug' if config.DEBUG else 'quiet'\n",
        },
        edit=("DEBUG = True", "DEBUG = None"),
        probe="print(config.DEBUG, tools.mode(), mode)",
    ),
    pattern(
        "project_function_appends_to_module_list",
        """
        import registry
        # %%
        n1 = registry.register('a')
        # %%
        n2 = registry.register('b')
        """,
        files={
            "registry.py": "ITEMS = []\n\ndef register(x):\n    ITEMS.append(x)\n"
            "    return len(ITEMS)\n"
        },
        edit=("'a'", "'z'"),
        probe="print(registry.ITEMS, n1, n2)",
    ),
    pattern(
        "project_module_keeps_a_notebook_object",
        """
        import tracker
        items = [0]
        tracker.watch(items)
        # %%
        tracker.bump()
        # %%
        tracker.bump()
        print(items)
        """,
        files={
            "tracker.py": "WATCHED = None\n\ndef watch(obj):\n    global WATCHED\n"
            "    WATCHED = obj\n\ndef bump():\n    WATCHED.append(len(WATCHED))\n"
        },
        edit=("[0]", "[10]"),
        probe="print(items, tracker.WATCHED is items)",
    ),
)

OUTPUT_PROTOCOL: tuple[Pattern, ...] = (
    pattern(
        "display_handle_updated_from_another_cell",
        """
        from IPython.display import display
        handle = display('waiting', display_id=True)
        # %%
        handle.update('done')
        """,
        edit=("'done'", "'finished'"),
        probe="print(type(handle).__name__)",
    ),
    pattern(
        "clear_output_progress_loop",
        """
        from IPython.display import clear_output
        for i in range(5):
            clear_output(wait=True)
            print(f'step {i}', flush=True)
        """,
        edit=("range(5)", "range(3)"),
        probe="print(i)",
    ),
    pattern(
        "underscore_and_out_after_restore",
        """
        x = 40
        # %%
        x + 2
        # %%
        x * 2
        """,
        edit=("x = 40", "x = 50"),
        probe="print(_, __, Out.get(2), _3)\nprint(_ + 1)",
    ),
    pattern(
        "message_the_cell_sends_on_iopub",
        """
        import IPython
        kernel = IPython.get_ipython().kernel
        # %%
        sent = kernel.session.send(
            kernel.iopub_socket, 'stream', {'name': 'stdout', 'text': 'sent by the cell\\n'},
            parent=kernel.get_parent(),
        )['content']['text']
        """,
        edit=("'sent by the cell", "'sent by this cell"),
        probe="print(repr(sent))",
    ),
    pattern(
        "stdout_and_stderr_interleaved",
        """
        import sys
        print('out 1', flush=True)
        print('err 1', file=sys.stderr, flush=True)
        print('out 2', flush=True)
        """,
        edit=("'out 2'", "'out two'"),
        probe="print('probe')",
    ),
    pattern(
        "log_lines_of_later_cells",
        """
        import logging
        logging.basicConfig(level=logging.INFO, format='%(levelname)s:%(message)s')
        # %%
        logging.info('first')
        # %%
        logging.info('second')
        """,
        edit=("'second'", "'zweite'"),
        probe="logging.info('probe')\nprint(len(logging.getLogger().handlers))",
    ),
    pattern(
        "os_system_echo",
        """
        import os, time
        code = os.system('echo hi')
        time.sleep(0.2)  # ipykernel forwards file descriptor 1 from a thread of its own
        """,
        edit=("echo hi", "echo ho"),
        probe="print(code)",
    ),
    pattern(
        "subprocess_run_echo",
        """
        import subprocess, time
        done = subprocess.run(['echo', 'x'])
        time.sleep(0.2)  # ipykernel forwards file descriptor 1 from a thread of its own
        """,
        edit=("'x'", "'y'"),
        probe="print(done.returncode, done.args)",
    ),
    pattern(
        "output_of_c_code",
        """
        import ctypes, time
        libc = ctypes.CDLL(None)
        # %%
        written = libc.puts(b'from C')
        flushed = libc.fflush(None)
        time.sleep(0.2)  # ipykernel forwards file descriptor 1 from a thread of its own
        """,
        edit=("b'from C'", "b'from libc'"),
        probe="print(written, flushed)",
    ),
    pattern(
        "cell_tagged_raises_exception",
        """
        x = 1
        # %%
        raise ValueError('expected failure')
        # %%
        y = x + 1
        """,
        tags={1: ("raises-exception",)},
        edit=("x = 1", "x = 2"),
        probe="print(x, y)",
    ),
    pattern(
        "matplotlib_figure_without_inline_loaded",
        """
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([1, 2, 3]);
        """,
        edit=("[1, 2, 3]", "[3, 2, 1]"),
        probe="print(type(fig).__name__, len(ax.lines))",
    ),
    pattern(
        "matplotlib_figure_with_inline_loaded",
        """
        %matplotlib inline
        # %%
        import matplotlib.pyplot as plt
        plt.figure(figsize=(2, 2))
        plt.plot([1, 4, 9])
        plt.show()
        """,
        edit=("[1, 4, 9]", "[9, 4, 1]"),
        probe="print(len(plt.get_fignums()))",
    ),
)

NAMED: tuple[Pattern, ...] = (
    *SILENTLY_WRONG,
    *OUTSIDE_GLOBALS,
    *INSIDE_OBJECTS,
    *UNSEEN_CALLS,
    *MISSED_INPUTS,
    *FUNCTIONS_INSIDE_VALUES,
    *REPLAYED_CELLS,
    *OUTPUT_PROTOCOL,
)
