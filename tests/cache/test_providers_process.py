"""The process's own settings, changed by a cell: set again when it is restored, and an input
of the cells after it (see nbcellar.cache.providers_process)."""

from __future__ import annotations

import atexit
import builtins
import decimal
import locale
import logging
import os
import sys
import time
from collections.abc import Iterator

import pytest

from tests.cache.conftest import DictKernel


def restarted(kernel: DictKernel, cells: list[str]) -> list[str]:
    """Run ``cells``, restart, run them again: the statuses of the second run."""
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    return kernel.statuses


def test_interpreter_limits_are_set_again_and_read_by_later_cells(kernel: DictKernel) -> None:
    start = sys.getrecursionlimit()
    cells = [
        "import sys\nsys.setrecursionlimit(4321)\nsys.set_int_max_str_digits(0)",
        "text = str(10 ** 5000)[:3]",
    ]
    assert restarted(kernel, cells) == ["restored", "restored"]
    assert sys.getrecursionlimit() == 4321
    assert sys.get_int_max_str_digits() == 0
    kernel.restart()
    assert sys.getrecursionlimit() == start
    kernel.run_all(["import sys\nsys.setrecursionlimit(4000)\nsys.set_int_max_str_digits(0)",
                    cells[1]])  # fmt: skip
    assert kernel.statuses == ["ran", "ran"]


def test_a_socket_timeout_and_csv_s_field_limit_are_set_again(kernel: DictKernel) -> None:
    import csv
    import socket

    cells = [
        "import csv, socket\nsocket.setdefaulttimeout(7.5)\ncsv.field_size_limit(10 ** 7)",
        "x = 1",
    ]
    assert restarted(kernel, cells) == ["restored", "restored"]
    assert socket.getdefaulttimeout() == 7.5
    assert csv.field_size_limit() == 10**7


def test_the_umask_is_set_again_and_the_files_written_after_key_on_it(
    kernel: DictKernel,
) -> None:
    write = "import os\nopen('f.txt', 'w').close()\nmode = os.stat('f.txt').st_mode & 0o777"
    assert restarted(kernel, ["import os\nold = os.umask(0o077)", write]) == ["restored"] * 2
    current = os.umask(0o022)
    os.umask(current)
    assert current == 0o077
    kernel.restart()
    os.remove("f.txt")
    kernel.run_all(["import os\nold = os.umask(0o027)", write])
    assert kernel.statuses == ["ran", "ran"]
    assert kernel.ns["mode"] == 0o640


def test_the_locale_is_set_again_in_every_category(kernel: DictKernel) -> None:
    start = locale.setlocale(locale.LC_ALL)
    cells = ["import locale\nlocale.setlocale(locale.LC_NUMERIC, 'C.UTF-8')", "x = 1"]
    assert restarted(kernel, cells) == ["restored", "restored"]
    assert locale.setlocale(locale.LC_NUMERIC) == "C.UTF-8"
    kernel.restart()
    assert locale.setlocale(locale.LC_ALL) == start


def test_the_time_zone_set_with_tzset_is_set_again(kernel: DictKernel) -> None:
    cells = [
        "import os, time\nos.environ['TZ'] = 'JST-9'\ntime.tzset()",
        "import time\nhour = time.localtime(0).tm_hour",
    ]
    assert restarted(kernel, cells) == ["restored", "restored"]
    assert time.tzname[0] == "JST"
    assert kernel.ns["hour"] == 9
    kernel.restart()
    kernel.run_all([cells[0].replace("JST-9", "EST+5"), cells[1]])
    assert kernel.statuses == ["ran", "ran"]
    assert kernel.ns["hour"] == 19


def test_decimal_s_context_is_set_again_with_its_flags(kernel: DictKernel) -> None:
    cells = [
        "import decimal\ndecimal.getcontext().prec = 5",
        "x = decimal.Decimal(1) / decimal.Decimal(7)",
    ]
    kernel.run_all(cells)
    flags = {s for s, v in decimal.getcontext().flags.items() if v}
    kernel.restart()
    assert decimal.getcontext().prec == 28
    kernel.run_all(cells)
    assert kernel.statuses == ["restored", "restored"]
    assert decimal.getcontext().prec == 5
    assert (
        {s for s, v in decimal.getcontext().flags.items() if v}
        == flags
        == {decimal.Inexact, decimal.Rounded}
    )
    assert str(kernel.ns["x"]) == "0.14286"


def test_a_name_put_in_builtins_is_put_back_and_read_by_later_cells(kernel: DictKernel) -> None:
    cells = ["import builtins\nbuiltins.NB_VERBOSE = True", "flag = NB_VERBOSE"]
    assert restarted(kernel, cells) == ["restored", "restored"]
    assert getattr(builtins, "NB_VERBOSE", None) is True
    kernel.restart()
    assert not hasattr(builtins, "NB_VERBOSE")
    kernel.run_all([cells[0].replace("True", "False"), cells[1]])
    assert kernel.statuses == ["ran", "ran"]
    assert kernel.ns["flag"] is False


@pytest.fixture
def handlers() -> Iterator[list[object]]:
    """The atexit handlers a test registers, unregistered after it."""
    made: list[object] = []
    yield made
    for handler in made:
        atexit.unregister(handler)  # type: ignore[arg-type]


def test_a_cell_registering_an_atexit_handler_runs_again_the_cells_below_stay_restored(
    kernel: DictKernel, handlers: list[object]
) -> None:
    cells = [
        "import atexit\ndef bye():\n    pass\natexit.register(bye)",
        "n = atexit._ncallbacks()",
    ]
    kernel.run_all(cells)
    handlers.append(kernel.ns["bye"])
    kernel.restart()
    before = atexit._ncallbacks()
    kernel.run_all(cells)
    handlers.append(kernel.ns["bye"])
    assert kernel.statuses == ["restored", "restored"]
    assert atexit._ncallbacks() == before + 1  # (registered again by running the cell)
    assert kernel.outcomes[0].reason == (
        "runs again on restore: atexit: it registers an atexit handler, which only running it does"
    )


def test_an_atexit_handler_registered_by_an_import_is_not_the_cell_s(
    kernel: DictKernel, handlers: list[object]
) -> None:
    (kernel.project / "registers_nb.py").write_text(
        "import atexit\n\ndef bye():\n    pass\n\natexit.register(bye)\n"
    )
    cells = ["import registers_nb", "x = 1"]
    kernel.run_all(cells)
    handlers.append(sys.modules["registers_nb"].bye)
    kernel.restart()
    kernel.run_all(cells)
    handlers.append(sys.modules["registers_nb"].bye)
    assert kernel.statuses == ["restored", "restored"]
    assert kernel.outcomes[0].reason == ""


def test_a_cell_logging_through_a_handler_of_the_notebook_always_runs(
    kernel: DictKernel,
) -> None:
    cells = [
        "import logging\nrecords = []\nclass Keep(logging.Handler):\n"
        "    def emit(self, record):\n        records.append(record.getMessage())\n"
        "log = logging.getLogger('nb-keep')\nlog.setLevel(logging.INFO)\nlog.propagate = False\n"
        "log.addHandler(Keep())",
        "log.info('one')",
        "x = 1",
    ]
    try:
        kernel.run_all(cells)
        kernel.restart()
        logging.getLogger("nb-keep").handlers.clear()
        kernel.run_all(cells)
        assert kernel.statuses == ["restored", "ran", "restored"]
        assert kernel.outcomes[1].reason == (
            "it logs through a Keep handler, which only running it does again"
        )
        assert kernel.ns["records"] == ["one"]
    finally:
        logging.getLogger("nb-keep").handlers.clear()
        logging.getLogger("nb-keep").setLevel(logging.NOTSET)
        logging.getLogger("nb-keep").propagate = True


def test_a_signal_handler_of_the_notebook_is_installed_again(kernel: DictKernel) -> None:
    import signal

    cells = [
        "import signal\nseen = []\ndef on_usr1(signum, frame):\n    seen.append(signum)\n"
        "signal.signal(signal.SIGUSR1, on_usr1)",
        "x = 1",
    ]
    try:
        kernel.run_all(cells)
        kernel.restart()
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        kernel.run_all(cells)
        assert kernel.statuses == ["restored", "restored"]
        assert getattr(signal.getsignal(signal.SIGUSR1), "__name__", None) == "on_usr1"
        signal.raise_signal(signal.SIGUSR1)
        assert kernel.ns["seen"] == [signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)


def test_a_function_s_content_does_not_depend_on_its_file_or_shared_strings() -> None:
    from nbcellar.cache.providers_process import _content

    source = "def f(x):\n    return {'a', 'b'} if x else 'text'\n"
    found = []
    for filename in ("/tmp/ipykernel_1/1.py", "/tmp/ipykernel_2/1.py"):
        namespace: dict[str, object] = {"__name__": "__main__"}
        exec(compile(source, filename, "exec"), namespace)
        found.append(_content(namespace["f"]))
    assert found[0] == found[1]
    namespace = {"__name__": "__main__"}
    exec(compile(source.replace("'text'", "'other'"), "/tmp/x.py", "exec"), namespace)
    assert _content(namespace["f"]) != found[0]


def test_the_cyclic_collector_turned_off_stays_off_and_nbcellar_s_pauses_are_not_a_change(
    kernel: DictKernel,
) -> None:
    import gc

    kernel.run_all(["x = 1"])
    assert "gc" not in kernel.cache.ambient.versions  # (paused while the cell was recorded)
    assert gc.isenabled()
    kernel.restart()
    cells = ["import gc\ngc.disable()\ngc.set_threshold(5000, 20, 20)", "y = [[1]] * 3"]
    assert restarted(kernel, cells) == ["restored", "restored"]
    assert not gc.isenabled()
    assert gc.get_threshold() == (5000, 20, 20)
