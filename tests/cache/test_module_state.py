"""The project's own modules as cells change them: imported and changed in one cell, reloaded,
bound by name (a restart puts the process back as a new kernel finds it)."""

from __future__ import annotations

import os

from tests.cache.conftest import DictKernel


def restarted(kernel: DictKernel, cells: list[str]) -> list[str]:
    """Run ``cells``, restart, run them again: the statuses of the second run."""
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    return kernel.statuses


def edit(kernel: DictKernel, name: str, text: str) -> None:
    path = kernel.project / name
    stat = path.stat()
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_a_module_imported_and_changed_in_one_cell_is_changed_after_a_restore(
    kernel: DictKernel,
) -> None:
    (kernel.project / "config_ms.py").write_text("DEBUG = False\n")
    (kernel.project / "tools_ms.py").write_text(
        "import config_ms\n\ndef mode():\n    return 'debug' if config_ms.DEBUG else 'quiet'\n"
    )
    cells = ["import config_ms\nconfig_ms.DEBUG = True", "import tools_ms\nmode = tools_ms.mode()"]
    assert restarted(kernel, cells) == ["restored", "restored"]
    assert kernel.ns["config_ms"].DEBUG is True
    assert kernel.ns["mode"] == "debug"
    kernel.restart()
    kernel.run_all(["import config_ms\nconfig_ms.DEBUG = None", cells[1]])
    assert kernel.statuses == ["ran", "ran"]  # the second cell keys on the module's globals
    assert kernel.ns["mode"] == "quiet"


def test_a_module_holding_a_notebook_object_holds_it_after_a_restore(kernel: DictKernel) -> None:
    (kernel.project / "tracker_ms.py").write_text(
        "WATCHED = None\n\ndef watch(obj):\n    global WATCHED\n    WATCHED = obj\n\n"
        "def bump():\n    WATCHED.append(len(WATCHED))\n"
    )
    cells = ["import tracker_ms\nitems = [0]\ntracker_ms.watch(items)", "tracker_ms.bump()"]
    assert restarted(kernel, cells) == ["restored", "restored"]
    assert kernel.ns["items"] == [0, 1]
    assert kernel.ns["tracker_ms"].WATCHED is kernel.ns["items"]


def test_a_reloaded_module_is_restored_as_the_reload_left_it(kernel: DictKernel) -> None:
    source = "SCALE = 1\n\ndef scaled(v):\n    return v * SCALE\n"
    (kernel.project / "scale_ms.py").write_text(source)
    cells = [
        "import importlib\nimport scale_ms",
        "scale_ms = importlib.reload(scale_ms)",
        "result = scale_ms.scaled(5)",
    ]
    assert restarted(kernel, cells) == ["restored"] * 3
    assert kernel.ns["result"] == 5


def test_a_module_bound_by_name_is_an_input_as_its_source(kernel: DictKernel) -> None:
    (kernel.project / "named_ms.py").write_text("def value():\n    return 1\n")
    cells = ["import importlib\nmod = importlib.import_module('named_ms')", "v = mod.value()"]
    assert restarted(kernel, cells) == ["restored", "restored"]
    kernel.restart()
    edit(kernel, "named_ms.py", "def value():\n    return 2\n")
    kernel.run_all(cells)
    assert kernel.ns["v"] == 2


def test_a_function_imported_from_a_project_module_is_an_input_as_its_source(
    kernel: DictKernel,
) -> None:
    (kernel.project / "byname_ms.py").write_text("def value():\n    return 1\n")
    cells = ["from byname_ms import value", "v = value()"]
    kernel.run_all(cells)
    edit(kernel, "byname_ms.py", "def value():\n    return 2\n")
    kernel.run(cells[1])  # (as after %autoreload put the new code in the function)
    assert kernel.statuses[-1] == "ran"
