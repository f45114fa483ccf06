"""Kernel state outside the variables: restored with the cells that changed it, and an input
of the cells after them (a restart puts the process back as a new kernel finds it)."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np

from tests.cache.conftest import DictKernel


def test_a_folder_put_on_the_import_path_is_there_after_a_restore(kernel: DictKernel) -> None:
    (kernel.project / "src").mkdir()
    (kernel.project / "src" / "tools_on_path.py").write_text("V = 1\n")
    cells = ["import sys\nsys.path.append('src')", "import tools_on_path\nv = tools_on_path.V"]
    kernel.run_all(cells)
    kernel.restart()
    assert "src" not in sys.path
    kernel.run_all(cells)
    assert kernel.statuses == ["restored", "restored"]
    assert sys.path[-1] == "src"
    assert kernel.ns["v"] == 1
    assert kernel.ns["tools_on_path"].V == 1


def test_an_environment_variable_set_is_restored_and_read_by_later_cells(
    kernel: DictKernel,
) -> None:
    read = "v = os.environ.get('NB_AMBIENT')"
    kernel.run_all(["import os\nos.environ['NB_AMBIENT'] = 'one'", read])
    kernel.restart()
    kernel.run_all(["import os\nos.environ['NB_AMBIENT'] = 'one'", read])
    assert kernel.statuses == ["restored", "restored"]
    assert os.environ["NB_AMBIENT"] == "one"
    kernel.restart()
    kernel.run_all(["import os\nos.environ['NB_AMBIENT'] = 'two'", read])
    assert kernel.statuses == ["ran", "ran"]
    assert kernel.ns["v"] == "two"


def test_the_working_directory_is_restored_and_read_by_later_cells(kernel: DictKernel) -> None:
    for folder, text in (("a", "from a"), ("b", "from b")):
        (kernel.project / folder).mkdir()
        (kernel.project / folder / "f.txt").write_text(text)
    read = "with open('f.txt') as f:\n    v = f.read()"
    kernel.run_all(["import os\nos.chdir('a')", read])
    kernel.restart()
    kernel.run_all(["import os\nos.chdir('a')", read])
    assert kernel.statuses == ["restored", "restored"]
    assert Path.cwd() == kernel.project / "a"
    kernel.restart()
    kernel.run_all(["import os\nos.chdir('b')", read])
    assert kernel.statuses == ["ran", "ran"]
    assert kernel.ns["v"] == "from b"


def test_a_seeded_generator_is_left_as_a_run_leaves_it(kernel: DictKernel) -> None:
    cells = ["import random\nrandom.seed(3)", "a = random.random()", "b = 2", "c = random.random()"]
    kernel.run_all(cells)
    expected = (kernel.ns["a"], kernel.ns["c"], random.random())
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["restored"] * 4
    assert (kernel.ns["a"], kernel.ns["c"], random.random()) == expected


def test_drawing_more_values_above_runs_again_the_cells_below_that_draw(
    kernel: DictKernel,
) -> None:
    cells = ["import random\nrandom.seed(3)", "a = random.random()", "b = 2", "c = random.random()"]
    kernel.run_all(cells)
    edited = [cells[0], "a = random.random() + random.random() * 0", *cells[2:]]
    kernel.restart()
    kernel.run_all(edited)
    assert kernel.statuses == ["restored", "ran", "restored", "ran"]
    random.seed(3)
    random.random(), random.random()
    assert kernel.ns["c"] == random.random()


def test_a_new_seed_runs_again_the_cells_that_draw(kernel: DictKernel) -> None:
    draw = "x = np.random.rand(3)"
    kernel.run_all(["import numpy as np\nnp.random.seed(0)", draw, "y = 1"])
    kernel.restart()
    kernel.run_all(["import numpy as np\nnp.random.seed(1)", draw, "y = 1"])
    assert kernel.statuses == ["ran", "ran", "restored"]
    np.random.seed(1)
    np.testing.assert_array_equal(kernel.ns["x"], np.random.rand(3))


def test_numpy_s_global_generator_is_left_as_a_run_leaves_it(kernel: DictKernel) -> None:
    cells = ["import numpy as np\nnp.random.seed(5)", "x = np.random.randn(3)"]
    kernel.run_all(cells)
    after = np.random.rand()
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["restored", "restored"]
    assert np.random.rand() == after


def test_a_submodule_imported_is_imported_again_on_restore(kernel: DictKernel) -> None:
    package = kernel.project / "pkg_ambient"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "sub.py").write_text("X = 7\n")
    cells = ["import pkg_ambient.sub", "v = pkg_ambient.sub.X"]
    kernel.run_all(cells)
    kernel.restart()
    assert "pkg_ambient.sub" not in sys.modules
    kernel.run_all(cells)
    assert kernel.statuses == ["restored", "restored"]
    assert kernel.ns["pkg_ambient"].sub.X == 7
