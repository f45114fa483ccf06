"""Everyday patterns changing the Python process's own settings, found beyond issue #13's."""

from __future__ import annotations

from tests.patterns_support import Pattern, pattern

PROCESS: tuple[Pattern, ...] = (
    pattern(
        "timezone_set_with_tzset",
        """
        import os, time
        os.environ['TZ'] = 'JST-9'
        time.tzset()
        # %%
        import datetime
        stamp = datetime.datetime.fromtimestamp(0).isoformat()
        """,
        edit=("'JST-9'", "'EST+5'"),
        probe="print(stamp, time.tzname[0], time.localtime(0).tm_hour)",
    ),
    pattern(
        "int_max_str_digits_lifted",
        """
        import sys
        sys.set_int_max_str_digits(0)
        # %%
        big = 7 ** 9000
        head = str(big)[:12]
        """,
        edit=("set_int_max_str_digits(0)", "set_int_max_str_digits(8000)"),
        probe="print(head, sys.get_int_max_str_digits(), len(str(big)))",
    ),
    pattern(
        "decimal_traps_and_rounding",
        """
        import decimal
        context = decimal.getcontext()
        context.traps[decimal.DivisionByZero] = False
        context.rounding = decimal.ROUND_DOWN
        # %%
        inf = decimal.Decimal(1) / decimal.Decimal(0)
        third = decimal.Decimal(2) / decimal.Decimal(3)
        """,
        edit=("ROUND_DOWN", "ROUND_UP"),
        probe="""
        flags = sorted(s.__name__ for s, v in decimal.getcontext().flags.items() if v)
        print(inf, third, decimal.getcontext().rounding, flags)
        """,
    ),
    pattern(
        "precision_magic",
        """
        %precision 3
        # %%
        import math
        math.pi
        """,
        edit=("%precision 3", "%precision 5"),
        probe="math.e",
    ),
    pattern(
        "signal_alarm_timeout_handler",
        """
        import signal

        class Timeout(Exception):
            pass

        def on_alarm(signum, frame):
            raise Timeout('too slow')

        signal.signal(signal.SIGALRM, on_alarm)
        # %%
        import time
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        try:
            time.sleep(2)
            outcome = 'finished'
        except Timeout as e:
            outcome = str(e)
        """,
        edit=("'too slow'", "'timed out'"),
        probe="""
        handler = signal.getsignal(signal.SIGALRM)
        print(outcome, getattr(handler, '__name__', handler))
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        try:
            time.sleep(2)
        except Exception as e:
            print(type(e).__name__, e)
        """,
    ),
    pattern(
        "gc_disabled_for_speed",
        """
        import gc
        gc.disable()
        gc.set_threshold(10000, 50, 50)
        # %%
        rows = [[i, str(i)] for i in range(2000)]
        n = len(rows)
        """,
        edit=("10000, 50, 50", "20000, 50, 50"),
        probe="print(n, gc.isenabled(), gc.get_threshold())",
    ),
    pattern(
        "ast_node_interactivity_all",
        """
        from IPython.core.interactiveshell import InteractiveShell
        InteractiveShell.ast_node_interactivity = 'all'
        # %%
        a = 1
        a + 1
        a + 2
        """,
        edit=("= 'all'", "= 'last_expr'"),
        probe="""
        a * 10
        a * 20
        """,
    ),
    pattern(
        "csv_field_size_limit_raised",
        """
        import csv
        csv.field_size_limit(1_000_000)
        # %%
        with open('wide.csv', 'w') as f:
            f.write('id,text\\n1,' + 'x' * 200_000 + '\\n')
        # %%
        with open('wide.csv') as f:
            rows = list(csv.reader(f))
        width = len(rows[1][1])
        """,
        edit=("1_000_000", "2_000_000"),
        probe="print(width, csv.field_size_limit())",
    ),
    pattern(
        "socket_default_timeout",
        """
        import socket
        socket.setdefaulttimeout(5)
        # %%
        timeout = socket.getdefaulttimeout()
        """,
        edit=("setdefaulttimeout(5)", "setdefaulttimeout(30)"),
        probe="print(timeout, socket.getdefaulttimeout(), socket.socket().gettimeout())",
    ),
    pattern(
        "faulthandler_enabled",
        """
        import faulthandler
        faulthandler.enable()
        # %%
        on = faulthandler.is_enabled()
        """,
        edit=("faulthandler.enable()", "faulthandler.disable()"),
        probe="print(on, faulthandler.is_enabled())",
    ),
    pattern(
        "config_set_through_run_line_magic",
        """
        import IPython
        IPython.get_ipython().run_line_magic('config', "InlineBackend.figure_formats = ['svg']")
        # %%
        import matplotlib.pyplot as plt
        plt.plot([1, 2, 3])
        plt.show()
        """,
        edit=("['svg']", "['png']"),
        probe="""
        print(sorted(get_ipython().config.InlineBackend.figure_formats))
        plt.plot([3, 2, 1])
        plt.show()
        """,
    ),
    pattern(
        "set_matplotlib_formats_called",
        """
        import matplotlib.pyplot as plt
        from matplotlib_inline.backend_inline import set_matplotlib_formats
        set_matplotlib_formats('svg')
        # %%
        plt.plot([1, 2, 3])
        plt.show()
        """,
        edit=("'svg'", "'png'"),
        probe="""
        plt.plot([3, 2, 1])
        plt.show()
        """,
    ),
    pattern(  # (restored, the kernel's inline backend drew the figures below)
        "matplotlib_use_agg",
        """
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        # %%
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([1, 2])
        """,
        edit=("[1, 2]", "[2, 1]"),
        probe="""
        plt.figure(figsize=(2, 2))
        plt.plot([3, 2, 1])
        plt.show()
        print(matplotlib.get_backend())
        """,
    ),
    pattern(
        "pyplot_switch_backend",
        """
        import matplotlib.pyplot as plt
        plt.switch_backend('svg')
        # %%
        plt.figure(figsize=(2, 2))
        plt.plot([1, 2])
        """,
        edit=("[1, 2]", "[2, 1]"),
        probe="print(plt.get_backend())",
    ),
)
