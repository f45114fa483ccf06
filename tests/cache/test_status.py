"""``nbcellar status`` (a simulated run, nothing executed) says what the next run does, for
cells that run without being stored: they are taken to make their values as they made them."""

from __future__ import annotations

from nbcellar.cache.status import predict
from nbcellar.notebook.model import Cell, Notebook
from tests.cache.conftest import DictKernel


def said(kernel: DictKernel, cells: list[str], nocache: int | None = None) -> list[str]:
    nb = Notebook(
        tuple(
            Cell("code", source, metadata={"tags": ["nocache"]} if i == nocache else {})
            for i, source in enumerate(cells)
        )
    )
    return [p.action for p in predict(nb, kernel.store, kernel.project, kernel.project)]


def test_the_cell_after_a_raising_one_is_restored_as_status_says(kernel: DictKernel) -> None:
    cells = ["x = 1", "x = 2\nraise RuntimeError('boom')", "y = x * 10"]
    kernel.run_all(cells)
    kernel.restart()
    edited = ["x = 5", *cells[1:]]
    predicted = said(kernel, edited)
    kernel.run_all(edited)
    assert kernel.statuses == ["ran", "error", "restored"]
    assert predicted == ["run", "run", "restore"]
    assert kernel.ns["y"] == 20


def test_a_cell_that_always_runs_and_makes_the_same_value_keeps_later_cells_restored(
    kernel: DictKernel,
) -> None:
    cells = ["words = 'one two'.split()", "n = len(words)"]
    kernel.run(cells[0], ("nocache",))
    kernel.run(cells[1])
    kernel.restart()
    predicted = said(kernel, cells, nocache=0)
    kernel.run(cells[0], ("nocache",))
    kernel.run(cells[1])
    assert kernel.statuses == ["ran", "restored"]
    assert predicted == ["always runs", "restore"]
    assert kernel.outcomes[0].reason == "tagged nocache"


def test_what_an_edited_cell_imports_is_known_without_running_it(kernel: DictKernel) -> None:
    cells = [
        "import json\nfrom fractions import Fraction\nx = 1",
        "s = json.dumps([str(Fraction(2))])",
    ]
    kernel.run_all(cells)
    kernel.restart()
    edited = ["import json\nfrom fractions import Fraction\nx = 2", cells[1]]
    predicted = said(kernel, edited)
    kernel.run_all(edited)
    assert kernel.statuses == ["ran", "restored"]
    assert predicted == ["run", "restore"]


def test_a_class_made_again_by_a_replayed_cell_keeps_the_cells_reading_it_restored(
    kernel: DictKernel,
) -> None:
    cells = [
        "import weakref\nclass Node:\n    pass\nnode = Node()\nreg = weakref.WeakValueDictionary()",
        "kind = type(node).__name__",
        "items = [node]",
    ]
    kernel.run_all(cells)
    kernel.restart()
    predicted = said(kernel, cells)
    kernel.run_all(cells)
    assert kernel.statuses == ["restored", "restored", "restored"]  # the first by running it
    assert predicted == ["restore", "restore", "restore"]
    # A value stored with the class of the first run is of the live class after a restart.
    assert type(kernel.ns["items"][0]) is kernel.ns["Node"]


def test_what_a_replayed_cell_makes_from_what_it_cannot_store_is_taken_as_new(
    kernel: DictKernel,
) -> None:
    cells = [  # (a lock cannot be stored: the cell runs again; its name is new each time)
        "import threading, uuid\nlock = threading.Lock()\n"
        "name = f'{type(lock).__name__}-{uuid.uuid4()}'\nsize = 3",
        "label = name.upper()",
        "double = size * 2",
    ]
    kernel.run_all(cells)
    for _ in range(2):  # before a replay was seen, and after
        kernel.restart()
        predicted = said(kernel, cells)
        kernel.run_all(cells)
        assert kernel.statuses == ["restored", "ran", "restored"]
        assert predicted == ["restore", "run", "restore"]
        assert kernel.ns["label"] == kernel.ns["name"].upper()
