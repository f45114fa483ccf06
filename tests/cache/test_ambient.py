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


def restarted(kernel: DictKernel, cells: list[str]) -> list[str]:
    """Run ``cells``, restart, run them again: the statuses of the second run."""
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    return kernel.statuses


def test_a_warnings_filter_is_restored_and_read_by_later_cells(kernel: DictKernel) -> None:
    import warnings

    cells = ["import warnings\nwarnings.filterwarnings('ignore', message='nb-ambient')", "x = 1"]
    assert restarted(kernel, cells) == ["restored", "restored"]
    assert warnings.filters[0][0] == "ignore"
    assert warnings.filters[0][1].pattern == "nb-ambient"
    kernel.restart()
    kernel.run_all(["import warnings\nwarnings.filterwarnings('error', message='nb-x')", "x = 1"])
    assert kernel.statuses == ["ran", "ran"]


def test_logging_configured_in_a_cell_is_configured_after_a_restore(
    kernel: DictKernel, tmp_path: Path
) -> None:
    import logging

    log = tmp_path / "run.log"
    cells = [
        f"import logging\nlogging.basicConfig(filename={str(log)!r}, level=logging.INFO, "
        "format='%(levelname)s %(message)s', force=True)",
        "logging.getLogger('nb').info('one')",
    ]
    assert restarted(kernel, cells) == ["restored", "ran"]  # (a cell logging always shows)
    handler = logging.root.handlers[-1]
    assert isinstance(handler, logging.FileHandler)
    assert logging.root.level == logging.INFO
    logging.getLogger("nb").info("two")
    handler.flush()
    assert log.read_text().splitlines()[-1] == "INFO two"
    handler.close()


def test_a_pandas_option_set_is_restored_and_the_cells_showing_frames_key_on_it(
    kernel: DictKernel,
) -> None:
    import pandas as pd

    show = "import pandas as pd\ntext = repr(pd.DataFrame({'a': range(10)}))"
    kernel.run_all(["import pandas as pd\npd.set_option('display.max_rows', 4)", show])
    short = kernel.ns["text"]
    kernel.restart()
    kernel.run_all(["import pandas as pd\npd.set_option('display.max_rows', 4)", show])
    assert kernel.statuses == ["restored", "restored"]
    assert pd.get_option("display.max_rows") == 4
    kernel.restart()
    kernel.run_all(["import pandas as pd\npd.set_option('display.max_rows', 20)", show])
    assert kernel.statuses == ["ran", "ran"]
    assert kernel.ns["text"] != short


def test_numpy_print_options_and_matplotlib_settings_are_restored(kernel: DictKernel) -> None:
    import matplotlib

    cells = [
        "import numpy as np\nnp.set_printoptions(precision=2)\nnp.seterr(divide='ignore')",
        "import matplotlib as mpl\nmpl.rcParams['lines.linewidth'] = 7.0",
        "text = repr(np.array([1 / 3]))",
    ]
    assert restarted(kernel, cells) == ["restored"] * 3
    assert np.get_printoptions()["precision"] == 2
    assert np.geterr()["divide"] == "ignore"
    assert matplotlib.rcParams["lines.linewidth"] == 7.0
    assert kernel.ns["text"] == "array([0.33])"


def test_globals_of_a_project_module_are_restored_and_keyed(kernel: DictKernel) -> None:
    (kernel.project / "settings_nb.py").write_text(
        "DEBUG = False\nSEEN = []\ndef note(x):\n    SEEN.append(x)\n"
    )
    cells = [
        "import settings_nb",
        "settings_nb.DEBUG = True",
        "data = [1, 2]\nsettings_nb.note(data)",
        "flag = settings_nb.DEBUG",
    ]
    assert restarted(kernel, cells) == ["restored"] * 4
    module = kernel.ns["settings_nb"]
    assert module.DEBUG is True
    assert module.SEEN == [[1, 2]]
    assert module.SEEN[0] is kernel.ns["data"]  # the module holds the notebook's object
    kernel.restart()
    kernel.run_all([cells[0], "settings_nb.DEBUG = 'verbose'", *cells[2:]])
    assert kernel.statuses == ["restored", "ran", "ran", "ran"]
    assert kernel.ns["flag"] == "verbose"


def test_a_folder_put_on_the_path_twice_is_restored(kernel: DictKernel) -> None:
    cells = ["import sys\nsys.path.append('twice')", "sys.path.append('twice')"]
    assert restarted(kernel, cells) == ["restored", "restored"]
    assert "twice" in sys.path


def test_a_seed_that_changes_nothing_in_one_run_changes_the_generator_in_another(
    kernel: DictKernel,
) -> None:
    # The second seed is recorded where the generator was seeded alike already (it changed
    # nothing) ...
    kernel.run_all(["import random", "random.seed(0)", "random.seed(0)"])
    kernel.restart()
    # ... and met where it was not: the seed must happen.
    kernel.run_all(["import random", "random.random()", "random.seed(0)"])
    after = random.getstate()
    random.seed(0)
    assert after == random.getstate()


def test_a_backend_chosen_by_a_cell_is_chosen_again_on_restore(kernel: DictKernel) -> None:
    import matplotlib

    chosen = matplotlib.get_backend()
    other = "pdf" if chosen.lower() != "pdf" else "svg"
    try:
        cells = [f"import matplotlib\nmatplotlib.use({other!r})", "x = 1"]
        assert restarted(kernel, cells) == ["restored", "restored"]
        assert matplotlib.get_backend().lower() == other
    finally:
        matplotlib.use(chosen)


def test_a_seed_first_met_where_it_changes_nothing_is_still_a_seed_elsewhere(
    kernel: DictKernel,
) -> None:
    # The last cell's key is new (an environment change above it joins its key), and the first
    # time it runs the generator is seeded alike already: its entry must still seed ...
    kernel.run_all(["import os, random", "random.seed(5)", "os.environ['NB_SEEDED'] = '1'",
                    "random.seed(5)"])  # fmt: skip
    kernel.restart()
    # ... where the generator is not: after a restart, without the seed above.
    random.seed(11)  # (the generator as this "new kernel" finds it)
    kernel.run_all(["import os, random", "os.environ['NB_SEEDED'] = '1'", "random.seed(5)"])
    after = random.getstate()
    random.seed(5)
    assert after == random.getstate()
