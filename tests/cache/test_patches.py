"""Patches of library modules and classes: set again when their cell is restored, and an input
of the cells after it (a restart puts the library back as a new process imports it)."""

from __future__ import annotations

import argparse
import copyreg
import statistics
import sys
from collections.abc import Iterator

import pytest

from tests.cache.conftest import DictKernel

_MEAN = statistics.mean


def as_imported() -> None:
    """What the tests patch, put back as a new process imports it."""
    statistics.mean = _MEAN
    if "describe" in vars(argparse.Namespace):
        del argparse.Namespace.describe
    sys.modules.pop("fake_patches", None)
    for klass in [k for k in copyreg.dispatch_table if k.__module__ == "__main__"]:
        del copyreg.dispatch_table[klass]
    import pandas as pd
    from pandas.core.groupby import generic

    for owner in (pd.DataFrame, pd.Series, generic.DataFrameGroupBy, generic.SeriesGroupBy):
        for name in [n for n in vars(owner) if n.startswith("progress_")]:
            delattr(owner, name)


@pytest.fixture(autouse=True)
def library_as_imported() -> Iterator[None]:
    yield
    as_imported()


def restart(kernel: DictKernel) -> None:
    """A new kernel: the namespace, and the library as imported."""
    kernel.restart()
    as_imported()


PATCH = (
    "import statistics\noriginal = statistics.mean\n\n"
    "def rounded_mean(values):\n    return round(original(values), 1)\n\n"
    "statistics.mean = rounded_mean"
)


def test_a_library_function_patched_is_patched_again_on_restore(kernel: DictKernel) -> None:
    cells = [PATCH, "m = statistics.mean([1, 2, 2])"]
    kernel.run_all(cells)
    restart(kernel)
    kernel.run_all(cells)
    assert kernel.statuses == ["restored", "restored"]
    assert statistics.mean is kernel.ns["rounded_mean"]
    assert statistics.mean([1, 1, 2]) == 1.3
    assert kernel.ns["m"] == 1.7


def test_an_edited_patch_runs_again_the_cells_after_it(kernel: DictKernel) -> None:
    cells = [PATCH, "m = statistics.mean([1, 2, 2])"]
    kernel.run_all(cells)
    restart(kernel)
    kernel.run_all([PATCH.replace("), 1)", "), 2)"), cells[1]])
    assert kernel.statuses == ["ran", "ran"]
    assert kernel.ns["m"] == 1.67


def test_a_method_added_to_a_library_class_is_there_after_a_restore(kernel: DictKernel) -> None:
    cells = [
        "import argparse\n\ndef describe(self):\n    return ', '.join(sorted(vars(self)))\n\n"
        "argparse.Namespace.describe = describe",
        "ns = argparse.Namespace(a=1, b=2)",
        "text = ns.describe()",
    ]
    kernel.run_all(cells)
    restart(kernel)
    kernel.run_all(cells)
    assert kernel.statuses == ["restored"] * 3
    assert kernel.ns["ns"].describe() == "a, b"
    restart(kernel)
    kernel.run_all([cells[0].replace("', '", "'; '"), *cells[1:]])
    assert kernel.statuses == ["ran", "ran", "ran"]
    assert kernel.ns["text"] == "a; b"


def test_a_module_made_by_code_in_sys_modules_runs_again_on_restore(kernel: DictKernel) -> None:
    cells = [
        "import sys, types\nfake = types.ModuleType('fake_patches')\nfake.VALUE = 1\n"
        "sys.modules['fake_patches'] = fake",
        "import fake_patches\nv = fake_patches.VALUE",
    ]
    kernel.run_all(cells)
    restart(kernel)
    kernel.run_all(cells)
    assert kernel.statuses == ["restored", "restored"]  # (run again for what cannot be stored)
    assert sys.modules["fake_patches"] is kernel.ns["fake"]
    restart(kernel)
    kernel.run_all([cells[0].replace("VALUE = 1", "VALUE = 2"), cells[1]])
    assert kernel.ns["v"] == 2


def test_methods_a_library_adds_to_pandas_are_added_again_on_restore(kernel: DictKernel) -> None:
    cells = [
        "import pandas as pd\nfrom tqdm.auto import tqdm\ntqdm.pandas(disable=True)",
        "doubled = pd.Series([1, 2]).progress_apply(lambda v: v * 2).tolist()",
    ]
    kernel.run_all(cells)
    restart(kernel)
    import pandas as pd

    assert not hasattr(pd.Series, "progress_apply")
    kernel.run_all(cells)
    assert kernel.statuses == ["restored", "restored"]
    assert pd.Series([3]).progress_apply(lambda v: v + 1).tolist() == [4]


def test_a_patch_that_cannot_be_stored_runs_its_cell_again_on_restore(kernel: DictKernel) -> None:
    cells = ["import statistics\nstatistics.HANDLE = open('handle.txt', 'w')", "x = 1"]
    kernel.run_all(cells)
    kernel.ns["statistics"].HANDLE.close()
    restart(kernel)
    kernel.run_all(cells)
    assert kernel.statuses == ["restored", "restored"]  # the first one run again
    assert not statistics.HANDLE.closed
    statistics.HANDLE.close()
    del statistics.HANDLE


def test_a_reducer_registered_for_a_notebook_class_is_registered_again(
    kernel: DictKernel,
) -> None:
    cells = [
        "import copyreg, pickle\n\nclass Point:\n    def __init__(self, x):\n        self.x = x"
        "\n\ndef reduce_point(p):\n    return (Point, (p.x * 10,))\n\n"
        "copyreg.pickle(Point, reduce_point)",
        "import copy\ndata = copy.copy(Point(1)).x  # (copy uses the reducers copyreg has)",
    ]
    kernel.run_all(cells)
    restart(kernel)
    kernel.run_all(cells)
    assert kernel.statuses == ["restored", "restored"]
    point = kernel.ns["Point"]
    assert copyreg.dispatch_table[point] is kernel.ns["reduce_point"]
    restart(kernel)
    kernel.run_all([cells[0].replace("* 10", "* 100"), cells[1]])
    assert kernel.statuses == ["ran", "ran"]
    assert kernel.ns["data"] == 100
