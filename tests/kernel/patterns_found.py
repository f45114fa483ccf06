"""Everyday patterns of the same kinds as issue #13's, found beyond those it names."""

from __future__ import annotations

from tests.kernel.patterns_found_objects import IN_PLACE, OBJECTS, STATEMENTS
from tests.kernel.patterns_found_patches import MODULES, PATCHES
from tests.kernel.patterns_found_process import PROCESS
from tests.kernel.patterns_found_state import STATE_INSIDE
from tests.patterns_support import Edit, Pattern, pattern

AMBIENT: tuple[Pattern, ...] = (
    pattern(
        "seed_set_inside_a_function",
        """
        import random

        def setup():
            random.seed(7)
        # %%
        setup()
        # %%
        x = random.random()
        """,
        edit=("seed(7)", "seed(8)"),
        probe="print(x, random.random())",
    ),
    pattern(
        "library_draws_from_the_global_rng",
        """
        import numpy as np
        import pandas as pd
        np.random.seed(0)
        # %%
        df = pd.DataFrame({'x': range(10)})
        # %%
        picked = df.sample(3)['x'].tolist()
        # %%
        again = df.sample(3)['x'].tolist()
        """,
        edit=("seed(0)", "seed(1)"),
        probe="print(picked, again)",
    ),
    pattern(
        "monkeypatched_library_function",
        """
        import statistics
        original = statistics.mean

        def rounded_mean(values):
            return round(original(values), 1)

        statistics.mean = rounded_mean
        # %%
        m = statistics.mean([1, 2, 2])
        """,
        edit=("round(original(values), 1)", "round(original(values), 2)"),
        probe="print(m, statistics.mean([1, 1, 2]))",
    ),
    pattern(
        "method_added_to_a_library_class",
        """
        import argparse

        def describe(self):
            return ', '.join(f'{k}={v}' for k, v in sorted(vars(self).items()))

        argparse.Namespace.describe = describe
        # %%
        ns = argparse.Namespace(a=1, b=2)
        # %%
        text = ns.describe()
        """,
        edit=("', '.join", "'; '.join"),
        probe="print(text, hasattr(argparse.Namespace, 'describe'))",
    ),
    pattern(
        "builtins_tweaked",
        """
        import builtins
        builtins.VERBOSE = True
        # %%
        flag = VERBOSE
        """,
        edit=("= True", "= False"),
        probe="import builtins\nprint(flag, getattr(builtins, 'VERBOSE', None))",
    ),
    pattern(
        "sys_setrecursionlimit",
        """
        import sys
        sys.setrecursionlimit(5000)
        # %%
        def depth(n):
            return 0 if n == 0 else 1 + depth(n - 1)
        # %%
        d = depth(3500)
        """,
        edit=("setrecursionlimit(5000)", "setrecursionlimit(6000)"),
        probe="print(sys.getrecursionlimit(), d)",
    ),
    pattern(
        "os_umask",
        """
        import os
        previous = os.umask(0o077)
        # %%
        if os.path.exists('secret.txt'):  # (a file written again keeps its mode)
            os.remove('secret.txt')
        with open('secret.txt', 'w') as f:
            f.write('x')
        mode = oct(os.stat('secret.txt').st_mode & 0o777)
        """,
        edit=("0o077", "0o027"),
        probe="current = os.umask(0o022)\nprint(mode, oct(current))",
    ),
    pattern(
        "locale_setlocale",
        """
        import locale
        locale.setlocale(locale.LC_ALL, 'C.UTF-8')
        # %%
        current = locale.setlocale(locale.LC_ALL)
        """,
        edit=("'C.UTF-8')", "'C')"),
        probe="print(current, locale.setlocale(locale.LC_ALL))",
    ),
    pattern(
        "decimal_context_precision",
        """
        import decimal
        decimal.getcontext().prec = 5
        # %%
        x = decimal.Decimal(1) / decimal.Decimal(7)
        """,
        edit=("prec = 5", "prec = 8"),
        probe="print(x, decimal.getcontext().prec)",
    ),
    pattern(
        "numpy_seterr",
        """
        import numpy as np
        previous = np.seterr(divide='raise')
        # %%
        try:
            np.array([1.0]) / 0
            outcome = 'no error'
        except FloatingPointError as e:
            outcome = str(e)
        """,
        edit=("divide='raise'", "divide='ignore'"),
        probe="print(outcome, np.geterr()['divide'])",
    ),
    pattern(
        "pandas_options_attribute",
        """
        import pandas as pd
        pd.options.display.precision = 2
        # %%
        df = pd.DataFrame({'x': [1 / 3, 2 / 3]})
        print(df)
        """,
        edit=("precision = 2", "precision = 4"),
        probe="print(pd.get_option('display.precision'))\nprint(df)",
    ),
    pattern(
        "module_injected_into_sys_modules",
        """
        import sys, types
        fake = types.ModuleType('fake')
        fake.VALUE = 1
        sys.modules['fake'] = fake
        # %%
        import fake as imported
        v = imported.VALUE
        """,
        edit=("VALUE = 1", "VALUE = 2"),
        probe="print(v, 'fake' in sys.modules)",
    ),
    pattern(
        "environ_read_by_a_child_process",
        """
        import os, subprocess
        os.environ['GREETING'] = 'hi'
        # %%
        said = subprocess.run(['sh', '-c', 'echo $GREETING'], capture_output=True,
                              text=True).stdout
        """,
        edit=("'hi'", "'hello'"),
        probe="print(repr(said), os.environ.get('GREETING'))",
    ),
    pattern(
        "environ_read_by_a_project_module_on_import",
        """
        import os
        os.environ['APP_MODE'] = 'prod'
        # %%
        import settings
        mode = settings.MODE
        """,
        files={"settings.py": "import os\nMODE = os.environ.get('APP_MODE', 'dev')\n"},
        edit=("'prod'", "'test'"),
        probe="print(mode, settings.MODE)",
    ),
    pattern(
        "threading_lock_and_global_counter",
        """
        import threading
        lock = threading.Lock()
        counter = 0
        # %%
        def bump():
            global counter
            with lock:
                counter += 1
        # %%
        for i in range(3):
            bump()
        """,
        edit=("range(3)", "range(5)"),
        probe="print(counter, lock.locked())",
    ),
    pattern(
        "atexit_handler_registered",
        """
        import atexit
        atexit.register(print, 'bye')
        # %%
        registered = atexit._ncallbacks()
        """,
        edit=("'bye'", "'ciao'"),
        probe="print(atexit._ncallbacks() - registered)",
    ),
)

FILES_AND_IMPORTS: tuple[Pattern, ...] = (
    pattern(
        "file_written_then_read",
        """
        seed = 1
        # %%
        with open('numbers.txt', 'w') as f:
            f.write(' '.join(str(seed * i) for i in range(4)))
        # %%
        numbers = open('numbers.txt').read().split()
        """,
        edit=("seed = 1", "seed = 2"),
        probe="print(numbers, open('numbers.txt').read())",
    ),
    pattern(
        "pandas_csv_written_then_read",
        """
        import pandas as pd
        scale = 1
        pd.DataFrame({'a': [1, 2, 3]}).mul(scale).to_csv('table.csv', index=False)
        # %%
        back = pd.read_csv('table.csv')
        total = int(back['a'].sum())
        """,
        edit=("scale = 1", "scale = 2"),
        probe="print(total)",
    ),
    pattern(
        "numpy_save_then_load",
        """
        import numpy as np
        np.save('weights.npy', np.arange(3) * 1.5)
        # %%
        weights = np.load('weights.npy')
        """,
        edit=("* 1.5", "* 2.5"),
        probe="print(weights)",
    ),
    pattern(
        "pathlib_read_text_of_a_data_file",
        """
        from pathlib import Path
        words = Path('notes.txt').read_text().split()
        # %%
        longest = max(words, key=len)
        """,
        files={"notes.txt": "a tiny note\n"},
        edit=Edit("a tiny note", "an enormous note", "notes.txt"),
        probe="print(words, longest)",
    ),
    pattern(
        "json_config_file_loaded",
        """
        import json
        with open('config.json') as f:
            config = json.load(f)
        # %%
        rate = config['rate'] * 10
        """,
        files={"config.json": '{"rate": 1}'},
        edit=Edit('"rate": 1', '"rate": 2', "config.json"),
        probe="print(config, rate)",
    ),
    pattern(
        "folder_listed_after_files_are_written",
        """
        import os
        os.makedirs('parts', exist_ok=True)
        n = 2
        for i in range(n):
            with open(f'parts/{i}.txt', 'w') as f:
                f.write(str(i))
        # %%
        import glob
        names = sorted(glob.glob('parts/*.txt'))
        """,
        edit=("n = 2", "n = 3"),
        probe="print(names)",
    ),
    pattern(
        "file_removed_by_a_cell",
        """
        import os
        with open('scratch.txt', 'w') as f:
            f.write('x')
        # %%
        os.remove('scratch.txt')
        gone = not os.path.exists('scratch.txt')
        """,
        edit=("f.write('x')", "f.write('y')"),
        probe="print(gone, os.path.exists('scratch.txt'))",
    ),
    pattern(
        "pickle_dump_then_load",
        """
        import pickle
        model = {'w': [1, 2]}
        with open('model.pkl', 'wb') as f:
            pickle.dump(model, f)
        # %%
        with open('model.pkl', 'rb') as f:
            loaded = pickle.load(f)
        """,
        edit=("[1, 2]", "[3, 4]"),
        probe="print(loaded, loaded == model)",
    ),
    pattern(
        "data_file_read_without_a_tag",
        """
        rows = open('data.csv').read().splitlines()
        # %%
        count = len(rows)
        """,
        files={"data.csv": "a\nb\n"},
        edit=Edit("a\nb\n", "a\nb\nc\n", "data.csv"),
        probe="print(rows, count)",
    ),
    pattern(
        "data_file_read_with_a_depends_tag",
        """
        # nbcellar: depends:data.csv
        rows = open('data.csv').read().splitlines()
        # %%
        count = len(rows)
        """,
        files={"data.csv": "a\nb\n"},
        edit=Edit("a\nb\n", "a\nb\nc\n", "data.csv"),
        probe="print(rows, count)",
    ),
    pattern(
        "file_handle_kept_open",
        """
        log = open('run.log', 'w')
        # %%
        log.write('line 1\\n')
        # %%
        log.flush()
        """,
        edit=("'line 1\\n'", "'line one\\n'"),
        probe="print(repr(open('run.log').read()))",
    ),
    pattern(
        "temporary_directory_object",
        """
        import os, tempfile
        tmp = tempfile.TemporaryDirectory()
        path = os.path.join(tmp.name, 'x.txt')
        with open(path, 'w') as f:
            f.write('hello')
        # %%
        text = open(path).read()
        """,
        edit=("'hello'", "'bye'"),
        probe="print(text, os.path.dirname(path) == tmp.name, os.path.exists(path))",
    ),
    pattern(
        "sqlite_in_memory_database",
        """
        import sqlite3
        conn = sqlite3.connect(':memory:')
        # %%
        conn.execute('CREATE TABLE t (x)');
        # %%
        conn.execute('INSERT INTO t VALUES (1), (2)');
        """,
        edit=("(1), (2)", "(1), (2), (3)"),
        probe="print(conn.execute('SELECT count(*) FROM t').fetchone())",
    ),
    pattern(
        "uuid_run_id_used_downstream",
        """
        import uuid
        run_id = uuid.uuid4().hex
        # %%
        tag = run_id[:8]
        """,
        edit=("run_id[:8]", "run_id[:6]"),
        probe="print(run_id.startswith(tag), len(run_id))",
    ),
    pattern(
        "star_import_from_a_project_module",
        """
        from tools import *
        # %%
        v = value()
        """,
        files={"tools.py": "def value():\n    return 1\n"},
        edit=Edit("return 1", "return 2", "tools.py"),
        probe="print(v, value())",
    ),
    pattern(
        "importlib_import_module_by_name",
        """
        import importlib
        mod = importlib.import_module('tools')
        # %%
        v = mod.value()
        """,
        files={"tools.py": "def value():\n    return 1\n"},
        edit=Edit("return 1", "return 2", "tools.py"),
        probe="print(v, mod.value())",
    ),
    pattern(
        "project_module_edited",
        """
        from tools import value
        # %%
        v = value()
        """,
        files={"tools.py": "def value():\n    return 1\n"},
        edit=Edit("return 1", "return 2", "tools.py"),
        probe="print(v, value())",
    ),
    pattern(
        "notebook_function_reads_a_project_module",
        """
        import tools

        def doubled():
            return tools.K * 2
        # %%
        r = doubled()
        """,
        files={"tools.py": "K = 1\n"},
        edit=Edit("K = 1", "K = 5", "tools.py"),
        probe="print(r, doubled())",
    ),
)

SHOWN: tuple[Pattern, ...] = (
    pattern(
        "carriage_return_progress",
        """
        import sys
        for i in range(3):
            sys.stdout.write(f'\\rprogress {i}')
            sys.stdout.flush()
        print()
        """,
        edit=("range(3)", "range(4)"),
        probe="print(i)",
    ),
    pattern(
        "stream_then_result",
        """
        print('a', end='')
        value = 42
        value
        """,
        edit=("value = 42", "value = 43"),
        probe="print(value)",
    ),
    pattern(
        "display_of_several_types",
        """
        from IPython.display import HTML, Markdown, display
        display(HTML('<b>bold</b>'), Markdown('*it*'))
        shown = 2
        """,
        edit=("shown = 2", "shown = 3"),
        probe="print(shown)",
    ),
    pattern(
        "capture_cell_magic",
        """
        %%capture captured
        print('hidden')
        # %%
        print(captured.stdout.upper())
        """,
        edit=("'hidden'", "'secret'"),
        probe="print(repr(captured.stdout))",
    ),
    pattern(
        "time_magic",
        """
        %time total = sum(range(1000))
        # %%
        half = total // 2
        """,
        edit=("range(1000)", "range(100)"),
        probe="print(total, half)",
    ),
    pattern(
        "shell_output_captured",
        """
        listing = !echo one two
        # %%
        words = listing[0].split()
        """,
        edit=("echo one two", "echo three"),
        probe="print(words)",
    ),
    pattern(
        "matplotlib_figure_built_over_cells",
        """
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(2, 2))
        plt.close(fig)
        # %%
        ax.plot([1, 2, 3]);
        # %%
        ax.set_title('hello');
        # %%
        fig
        """,
        edit=("[1, 2, 3]", "[3, 2, 1]"),
        probe="print(ax.get_title(), len(ax.lines))",
    ),
    pattern(
        "sklearn_pipeline_fit_on_a_bundled_dataset",
        """
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        X, y = load_iris(return_X_y=True)
        # %%
        pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        # %%
        pipe.fit(X, y)
        score = round(pipe.score(X, y), 4)
        """,
        edit=("max_iter=500)", "max_iter=500, C=0.05)"),
        probe="print(score, hasattr(pipe[-1], 'coef_'), pipe.predict(X[::40]).tolist())",
    ),
)

FOUND: tuple[Pattern, ...] = (
    *STATEMENTS,
    *IN_PLACE,
    *OBJECTS,
    *STATE_INSIDE,
    *AMBIENT,
    *PROCESS,
    *FILES_AND_IMPORTS,
    *SHOWN,
    *PATCHES,
    *MODULES,
)
