"""A restored notebook function has its cell's source: tracebacks show the lines,
``inspect.getsource`` finds them, in a kernel that never ran the cell."""

from __future__ import annotations

import inspect
import linecache
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path
from typing import Any

import pytest

from nbcellar.store import Store
from tests.store.conftest import Kernels

CELL = '''
import numbers

def check(value):
    """Refuse what is too large."""
    limit = 10
    if value > limit:
        raise ValueError(f"{value} is over {limit}")
    return value

class Gauge:
    def read(self, value):
        def clipped():
            return check(value)
        return clipped()
'''


def restored_kernel(kernels: Kernels, store: Store) -> dict[str, object]:
    first = kernels.start()
    first.run(CELL)
    snapshot = store.save_namespace(first.variables)
    second = kernels.start()  # the cell's lines are gone from linecache, as in a new process
    assert not any(f in linecache.cache for f in first.files)
    second.restore(store, snapshot)
    return second.ns


def test_a_traceback_through_a_restored_function_shows_its_lines(
    kernels: Kernels, store: Store
) -> None:
    ns = restored_kernel(kernels, store)
    with pytest.raises(ValueError, match="11 is over 10") as raised:
        ns["Gauge"]().read(11)  # type: ignore[operator]
    text = "".join(traceback.format_exception(raised.value))
    assert 'raise ValueError(f"{value} is over {limit}")' in text
    assert "return check(value)" in text
    assert "<dynamic-code>" not in text


def test_inspect_finds_the_source_of_restored_functions(kernels: Kernels, store: Store) -> None:
    def sources(ns: dict[str, Any]) -> list[str | None]:
        check, read = ns["check"], ns["Gauge"].read
        return [inspect.getsource(check), inspect.getsource(read), inspect.getdoc(check)]

    first = kernels.start()
    first.run(CELL)
    defined = sources(first.ns)
    snapshot = store.save_namespace(first.variables)
    second = kernels.start()
    second.restore(store, snapshot)
    assert sources(second.ns) == defined
    assert defined[0].startswith("def check(value):")  # type: ignore[union-attr]


def test_lines_already_registered_under_the_name_stay(kernels: Kernels, store: Store) -> None:
    first = kernels.start()
    first.run(CELL)
    snapshot = store.save_namespace(first.variables)
    filename = first.files[-1]
    kept = (1, None, ["# what the kernel has\n"], filename)
    second = kernels.start()
    linecache.cache[filename] = kept
    second.restore(store, snapshot)
    assert linecache.cache[filename] is kept


SAVE = """
import linecache, os, sys, tempfile
from nbcellar.store import open_store
from nbcellar.store.values import fingerprint_key

source = "def area(r):\\n    return 3.14 * r * r\\n"
filename = f"{tempfile.gettempdir()}/ipykernel_{os.getpid()}/1234.py"
linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
exec(compile(source, filename, "exec"), globals())
print(fingerprint_key({"area": area}))
if sys.argv[1:]:
    print(open_store(sys.argv[1]).save_namespace({"area": area}).id)
"""

LOAD = """
import inspect, os, sys
from nbcellar.store import open_store

ns = {"__name__": "__main__"}
ns.update(open_store(sys.argv[1]).restore(sys.argv[2], namespace=ns).values)
area = ns["area"]
print(area.__code__.co_filename.endswith(f"ipykernel_{os.getpid()}/1234.py"))
print(inspect.getsource(area).splitlines()[1].strip())
"""


def run_python(script: str, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.split("\n")


def test_a_cell_file_is_named_for_the_loading_process_and_stored_the_same_by_any(
    tmp_path: Path,
) -> None:
    """ipykernel names a cell's file after its process: stored, the name does not depend on
    which kernel stored it (the stored bytes are also the value's fingerprint), and a restored
    function has the name the loading kernel gives the same cell."""
    store_dir = str(tmp_path / ".nbcellar")
    fingerprint, snapshot_id, _ = run_python(SAVE, store_dir)
    again, _ = run_python(SAVE)
    assert again == fingerprint
    assert run_python(LOAD, store_dir, snapshot_id)[:2] == ["True", "return 3.14 * r * r"]
