"""Files a cell opens without a ``depends:`` tag: the cell is restored only while the files it
read are as it read them and those it wrote as it left it; a cell that changes a file in place
always runs."""

from __future__ import annotations

import os

from tests.cache.conftest import DictKernel

WRITE = (
    "with open('numbers.txt', 'w') as f:\n    f.write(' '.join(str(seed * i) for i in range(3)))"
)
READ = "with open('numbers.txt') as f:\n    numbers = f.read().split()"


def test_a_data_file_edited_makes_its_reader_run_again(kernel: DictKernel) -> None:
    (kernel.project / "data.csv").write_text("a\nb\n")
    cells = ["with open('data.csv') as f:\n    rows = f.read().splitlines()", "count = len(rows)"]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["restored", "restored"]
    (kernel.project / "data.csv").write_text("a\nb\nc\n")
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["ran", "ran"]
    assert kernel.outcomes[0].reason == "a file it read changed: data.csv"
    assert kernel.ns["count"] == 3


def test_a_file_written_again_above_makes_its_reader_run_again(kernel: DictKernel) -> None:
    kernel.run_all(["seed = 1", WRITE, READ])
    kernel.restart()
    kernel.run_all(["seed = 1", WRITE, READ])
    assert kernel.statuses == ["restored"] * 3
    kernel.restart()
    kernel.run_all(["seed = 2", WRITE, READ])
    assert kernel.statuses == ["ran", "ran", "ran"]
    assert kernel.ns["numbers"] == ["0", "2", "4"]


def test_a_file_it_wrote_that_is_gone_makes_the_writer_run_again(kernel: DictKernel) -> None:
    kernel.run_all(["seed = 1", WRITE])
    os.remove(kernel.project / "numbers.txt")
    kernel.restart()
    kernel.run_all(["seed = 1", WRITE])
    assert kernel.statuses == ["restored", "ran"]
    assert kernel.outcomes[1].reason == "a file it wrote changed: numbers.txt"
    assert (kernel.project / "numbers.txt").read_text() == "0 1 2"


def test_a_cell_appending_to_a_file_always_runs(kernel: DictKernel) -> None:
    (kernel.project / "log.txt").write_text("")
    append = "with open('log.txt', 'a') as f:\n    f.write('line\\n')"
    kernel.run(append)
    kernel.restart()
    kernel.run(append)
    assert kernel.statuses == ["ran"]
    assert kernel.outcomes[0].reason == (
        "appends to log.txt: running it again changes the file again"
    )
    assert (kernel.project / "log.txt").read_text() == "line\nline\n"


def test_a_cell_rewriting_the_file_it_read_always_runs(kernel: DictKernel) -> None:
    (kernel.project / "count.txt").write_text("1")
    bump = (
        "with open('count.txt') as f:\n    n = int(f.read())\n"
        "with open('count.txt', 'w') as f:\n    f.write(str(n + 1))"
    )
    kernel.run(bump)
    kernel.restart()
    kernel.run(bump)
    assert kernel.outcomes[0].reason.startswith("rewrites count.txt, which it read")
    assert (kernel.project / "count.txt").read_text() == "3"


def test_a_folder_listed_is_listed_again_when_a_file_is_added(kernel: DictKernel) -> None:
    (kernel.project / "parts").mkdir()
    (kernel.project / "parts" / "0.txt").write_text("0")
    cells = ["import glob\nnames = sorted(glob.glob('parts/*.txt'))"]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["restored"]
    (kernel.project / "parts" / "1.txt").write_text("1")
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["ran"]
    assert kernel.ns["names"] == ["parts/0.txt", "parts/1.txt"]


def test_the_stores_own_files_and_module_files_are_not_the_cells(kernel: DictKernel) -> None:
    (kernel.project / "helper_mod_files.py").write_text("X = 1\n")
    kernel.run("import helper_mod_files\nbig = list(range(100_000))")
    kernel.run("y = len(big)")
    kernel.store.flush()
    kernel.restart()
    kernel.run_all(["import helper_mod_files\nbig = list(range(100_000))", "y = len(big)"])
    assert kernel.statuses == ["restored", "restored"]


def test_importing_a_module_does_not_make_its_folder_an_input(kernel: DictKernel) -> None:
    (kernel.project / "helper_mod_listing.py").write_text("X = 1\n")
    kernel.run("import helper_mod_listing\nx = helper_mod_listing.X")
    (kernel.project / "unrelated.txt").write_text("a new file in the folder")
    kernel.restart()
    kernel.run("import helper_mod_listing\nx = helper_mod_listing.X")
    assert kernel.statuses == ["restored"]
