"""``nbcellar run`` with the cache, and ``nbcellar status``, on real kernels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli
from tests.edits import edit_source

pytestmark = pytest.mark.slow

CELLS = [
    "import time\nimport numpy as np",
    "raw = np.arange(100_000.0)\ntime.sleep(0.5)\nprint('loaded', raw.size)",
    "clean = raw[raw % 2 == 0]\nclean.size",
    "other = 'independent'",
    "summary = {'mean': float(clean.mean()), 'other': other}\nsummary",
]


def write(path: Path, sources: list[str]) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i}"
    nbformat.write(nb, path)
    return path


def run(path: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["run", str(path), *args])
    assert result.exit_code == 0, result.output
    return result


def statuses(path: Path) -> list[str]:
    nb = nbformat.read(path.with_name(path.stem + ".out.ipynb"), as_version=4)
    return [c.metadata.get("nbcellar", {}).get("status", "-") for c in nb.cells]


def outputs(path: Path) -> list[Any]:
    nb = nbformat.read(path.with_name(path.stem + ".out.ipynb"), as_version=4)
    return [c.outputs for c in nb.cells]


def test_second_run_restores_every_cell_with_the_same_outputs(tmp_path: Path) -> None:
    nb = write(tmp_path / "flow.ipynb", CELLS)
    run(nb)
    first = outputs(nb)
    result = run(nb)
    assert statuses(nb) == ["restored"] * 5
    assert outputs(nb) == first
    assert "0 of 5 cells ran, 5 restored" in result.stdout
    saved = nbformat.read(tmp_path / "flow.out.ipynb", as_version=4).cells[1].metadata["nbcellar"]
    assert saved["saved_seconds"] >= 0.5


def test_editing_the_last_cell_runs_only_it(tmp_path: Path) -> None:
    nb = write(tmp_path / "flow.ipynb", CELLS)
    run(nb)
    write(nb, [*CELLS[:4], "summary = {'mean': float(clean.mean())}\nsummary"])
    run(nb)
    assert statuses(nb) == ["restored"] * 4 + ["ran"]


def test_editing_a_middle_cell_runs_it_and_its_dependants(tmp_path: Path) -> None:
    nb = write(tmp_path / "flow.ipynb", CELLS)
    run(nb)
    edited = list(CELLS)
    edited[2] = "clean = raw[raw % 3 == 0]\nclean.size"
    write(nb, edited)
    run(nb)
    assert statuses(nb) == ["restored", "restored", "ran", "restored", "ran"]


def test_no_cache_runs_everything_and_stores_nothing(tmp_path: Path, private_store: Path) -> None:
    nb = write(tmp_path / "flow.ipynb", CELLS)
    result = run(nb, "--no-cache")
    assert "5 of 5 cells ran in" in result.stdout
    assert not (private_store / "objects").exists()


def test_status_says_what_a_run_would_do_and_why(tmp_path: Path) -> None:
    nb = write(tmp_path / "flow.ipynb", CELLS)
    before = CliRunner().invoke(cli, ["status", str(nb)])
    assert before.exit_code == 0
    assert "0 of 5 cells would be restored" in before.stdout
    run(nb)
    after = CliRunner().invoke(cli, ["status", str(nb)])
    assert "5 of 5 cells would be restored" in after.stdout
    edited = list(CELLS)
    edited[2] = "clean = raw[raw % 3 == 0]\nclean.size"
    write(nb, edited)
    changed = CliRunner().invoke(cli, ["status", str(nb)], terminal_width=200)
    lines = {ln.split()[0]: ln for ln in changed.stdout.splitlines() if ln.startswith("[")}
    assert "restore" in lines["[2]"]
    assert "run" in lines["[3]"]
    assert "new or edited code" in lines["[3]"]
    assert "input clean changed" in lines["[5]"]
    assert "restore" in lines["[4]"]


def test_tags_reach_the_kernel(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import random\nvalue = random.random()",
                                      metadata={"tags": ["nocache"]}),
            nbformat.v4.new_code_cell("doubled = 2 * value"),
        ]
    )  # fmt: skip
    path = tmp_path / "tags.ipynb"
    nbformat.write(nb, path)
    run(path)
    run(path)
    assert statuses(path) == ["ran", "ran"]  # a new random value makes its reader run too


def test_two_runs_at_once_compute_a_slow_cell_once(tmp_path: Path, private_store: Path) -> None:
    nb = write(tmp_path / "slow.ipynb", ["import time\ntime.sleep(4)\nanswer = 42", "answer"])
    exe = Path(sys.executable).with_name("nbcellar")
    procs = [
        subprocess.Popen(
            [str(exe), "run", str(nb), "-o", str(tmp_path / f"out{i}.ipynb")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    first = [
        nbformat.read(tmp_path / f"out{i}.ipynb", as_version=4).cells[0].metadata["nbcellar"]
        for i in range(2)
    ]
    assert sorted(m["status"] for m in first) == ["ran", "restored"], (first, results)


def test_database_and_project_module_in_a_real_kernel(tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute("CREATE TABLE sales (amount REAL)")
        db.executemany("INSERT INTO sales VALUES (?)", [(1.0,), (2.5,)])
    (tmp_path / "pricing.py").write_text("def with_tax(v):\n    return round(v * 1.2, 2)\n")
    nb = write(
        tmp_path / "report.ipynb",
        [
            "import sqlite3\nconn = sqlite3.connect('shop.db')",
            "import time\ntime.sleep(1)\n"
            "total = conn.execute('SELECT SUM(amount) FROM sales').fetchone()[0]",
            "from pricing import with_tax",
            "print(with_tax(total))",
        ],
    )
    run(nb)
    assert outputs(nb)[3][0]["text"] == "4.2\n"
    run(nb)
    # The connection cannot be stored, so its cell runs; the slow query stays restored.
    assert statuses(nb) == ["restored", "restored", "restored", "restored"]
    assert outputs(nb)[3][0]["text"] == "4.2\n"
    edit_source(tmp_path / "pricing.py", "def with_tax(v):\n    return round(v * 1.5, 2)\n")
    run(nb)
    assert statuses(nb) == ["restored", "restored", "ran", "ran"]
    assert outputs(nb)[3][0]["text"] == "5.25\n"


# --- a notebook whose every cell would be restored needs no kernel

SHOWN = [
    # (flushed: the kernel sends its two streams on their own, so their order is not fixed)
    "import sys\nfrom IPython.display import HTML, display\nprint('to stdout', flush=True)\n"
    "print('to stderr', file=sys.stderr)",
    "",
    "display(HTML('<b>shown</b>'))\nrows = [1, 2, 3]\nrows",
    "total = sum(rows)\nprint(total)\ntotal * 2",
]


def execute(path: Path, **options: Any) -> Any:
    from nbcellar.notebook import read_notebook
    from nbcellar.runs.execute import execute_notebook
    from nbcellar.store.location import find_store_root

    return execute_notebook(
        read_notebook(path), cwd=path.parent, store_root=find_store_root(None), **options
    )


def cells_shown(result: Any) -> list[tuple[Any, Any, Any]]:
    return [
        (c.execution_count, c.outputs, c.metadata.get("nbcellar", {}).get("status"))
        for c in result.notebook.cells
    ]


def test_an_unchanged_notebook_is_restored_without_a_kernel_as_a_kernel_would(
    tmp_path: Path,
) -> None:
    nb = write(tmp_path / "shown.ipynb", SHOWN)
    first = execute(nb)
    assert first.kernel_started
    in_kernel = execute(nb, without_kernel=False)
    assert in_kernel.kernel_started
    assert [c.status for c in in_kernel.cells] == ["restored", "not run", "restored", "restored"]
    served = execute(nb)
    assert not served.kernel_started
    assert [c.status for c in served.cells] == ["restored", "not run", "restored", "restored"]
    assert cells_shown(served) == cells_shown(in_kernel)
    assert [c.outputs for c in served.notebook.cells] == [c.outputs for c in first.notebook.cells]
    assert served.seconds < 1.0
    result = run(nb)
    assert "without starting a kernel" in result.stdout


def test_a_kernel_runs_what_changed_outside_the_notebook(tmp_path: Path) -> None:
    (tmp_path / "pricing.py").write_text("RATE = 1.2\n")
    (tmp_path / "sales.csv").write_text("1.0\n2.5\n")
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("from pricing import RATE"),
            nbformat.v4.new_code_cell(
                "amounts = [float(v) for v in open('sales.csv')]",
                metadata={"tags": ["depends:sales.csv"]},
            ),
            nbformat.v4.new_code_cell("print(round(sum(amounts) * RATE, 2))"),
        ]
    )
    path = tmp_path / "priced.ipynb"
    nbformat.write(nb, path)
    assert execute(path).kernel_started
    assert not execute(path).kernel_started
    edit_source(tmp_path / "pricing.py", "RATE = 1.5\n")
    edited = execute(path)
    assert edited.kernel_started
    assert [c.status for c in edited.cells] == ["ran", "restored", "ran"]
    assert edited.notebook.cells[2].outputs[0]["text"] == "5.25\n"
    assert not execute(path).kernel_started
    # The module changed back: the run before the edit is served again, with its outputs,
    # and no kernel; and so is the edited one, edited again.
    edit_source(tmp_path / "pricing.py", "RATE = 1.2\n")
    reverted = execute(path)
    assert not reverted.kernel_started
    assert [c.status for c in reverted.cells] == ["restored"] * 3
    assert reverted.notebook.cells[2].outputs[0]["text"] == "4.2\n"
    edit_source(tmp_path / "pricing.py", "RATE = 1.5\n")
    again = execute(path)
    assert not again.kernel_started
    assert again.notebook.cells[2].outputs[0]["text"] == "5.25\n"
    (tmp_path / "sales.csv").write_text("1.0\n2.5\n4.0\n")
    data = execute(path)
    assert data.kernel_started
    assert [c.status for c in data.cells] == ["restored", "ran", "ran"]
    assert data.notebook.cells[2].outputs[0]["text"] == "11.25\n"


def test_refresh_tags_and_lost_entries_start_a_kernel(tmp_path: Path) -> None:
    from nbcellar.cache.entries import KIND
    from nbcellar.store import open_store

    nb = write(tmp_path / "flow.ipynb", CELLS)
    first = execute(nb)
    assert not execute(nb).kernel_started
    store = open_store()
    try:
        key = first.cells[2].key
        assert key is not None
        store.delete_record(KIND, key)
    finally:
        store.close()
    lost = execute(nb)
    assert lost.kernel_started
    # The cell runs again; it makes the same value, so the cell reading it stays restored.
    assert [c.status for c in lost.cells] == ["restored", "restored", "ran", "restored", "restored"]
    assert not execute(nb).kernel_started
    tagged = nbformat.read(nb, as_version=4)
    tagged.cells[0].metadata["tags"] = ["refresh"]
    nbformat.write(tagged, nb)
    assert execute(nb).kernel_started


def test_a_cell_that_cannot_be_cached_says_why_in_the_table_and_the_notebook(
    tmp_path: Path,
) -> None:
    nb = write(
        tmp_path / "logs.ipynb",
        [
            "import logging\nlog = logging.getLogger('nb-why')\n"
            "log.addHandler(logging.FileHandler('run.log'))\nlog.setLevel(logging.INFO)",
            "log.info('step done')",
        ],
    )
    run(nb)
    result = run(nb)
    assert statuses(nb) == ["restored", "ran"]
    assert "[2] always runs: it logs to" in result.stdout
    assert "run.log" in result.stdout
    cell = nbformat.read(tmp_path / "logs.out.ipynb", as_version=4).cells[1]
    assert "only running it writes again" in cell.metadata["nbcellar"]["reason"]
    # (Each run wrote its line: a restore would have left the file without the second.)
    assert (tmp_path / "run.log").read_text().splitlines() == ["step done", "step done"]


def test_a_notebook_drawing_from_the_global_generator_comes_back_without_a_kernel(
    tmp_path: Path,
) -> None:
    nb = write(
        tmp_path / "draws.ipynb",
        ["import numpy as np\nnp.random.seed(1)", "x = np.random.rand(3)\nprint(x.round(3))"],
    )
    run(nb)
    first = outputs(nb)
    result = run(nb)
    assert "without starting a kernel" in result.stdout
    assert outputs(nb) == first
