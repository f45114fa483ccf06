"""Smoke tests in real kernels: ``nbcellar test`` and ``pytest --nbcellar`` (run by pytest
itself) over notebooks and a pipeline; smoke values used only there; the carried store making
the next push restore what did not change; ``--changed``."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

import nbcellar
from nbcellar.cli.main import cli

pytestmark = pytest.mark.slow

pytest_plugins = ["pytester"]

OK = """\
# %% tags=["parameters"]
n = 1000

# %% tags=["smoke-parameters"]
n = 10

# %%
total = sum(range(n))
print(total)
"""

BAD = "# %%\nx = 1\n\n# %%\nraise ValueError('bad rows')\n"

SKIPPING = """\
# %%
y = 2

# %% tags=["skip-execution"]
import time
time.sleep(300)

# %% tags=["raises-exception"]
1 / 0
"""

PIPELINE = """\
smoke:
  rows: 5
tasks:
  - source: make.py
    product: {nb: products/make.ipynb, data: products/make.csv}
  - source: use.py
"""

MAKE = """\
# %% tags=["parameters"]
upstream = None
product = None
rows = 1000

# %%
open(product["data"], "w").write(",".join(str(i) for i in range(rows)))
"""

USE = """\
# %% tags=["parameters"]
upstream = ["make"]

# %%
values = open(upstream["make"]["data"]).read().split(",")
print(len(values))
"""


def project(folder: Path) -> Path:
    (folder / "notebooks").mkdir(parents=True)
    (folder / "notebooks" / "ok.py").write_text(OK)
    (folder / "notebooks" / "skipping.py").write_text(SKIPPING)
    (folder / "flow").mkdir()
    (folder / "flow" / "pipeline.yaml").write_text(PIPELINE)
    (folder / "flow" / "make.py").write_text(MAKE)
    (folder / "flow" / "use.py").write_text(USE)
    return folder


def lines(output: str) -> dict[str, str]:
    found = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("PASSED", "FAILED", "UNCHANGED", "SKIPPED"):
            found[parts[1].rstrip(":")] = parts[0]
    return found


def test_nbcellar_test_runs_each_notebook_and_task_small_and_says_what_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path)
    (tmp_path / "notebooks" / "bad.py").write_text(BAD)
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(cli, ["test", "-j", "2"])
    assert done.exit_code == 1, done.output
    assert lines(done.stdout) == {
        "notebooks/bad.py": "FAILED", "notebooks/ok.py": "PASSED",
        "notebooks/skipping.py": "PASSED", "flow/make": "PASSED", "flow/use": "PASSED",
    }  # fmt: skip
    assert "FAILED    notebooks/bad.py: cell [2] raised ValueError: bad rows" in done.stdout
    assert "    raise ValueError('bad rows')" in done.stdout  # its source, then its traceback
    assert "ValueError: bad rows" in done.stdout.split("___ notebooks/bad.py ___")[1]
    assert done.stdout.splitlines()[-1].startswith("4 passed, 1 failed in ")
    executed = json.loads((tmp_path / ".nbcellar-smoke" / "notebooks" / "ok.ipynb").read_text())
    printed = [
        "".join(o["text"]) for c in executed["cells"] for o in c.get("outputs", []) if "text" in o
    ]
    assert printed == ["45\n"]  # n = 10: the smoke value
    smoke_products = tmp_path / "flow" / ".nbcellar-smoke" / "products"
    assert (smoke_products / "make.csv").read_text() == "0,1,2,3,4"
    assert not (tmp_path / "flow" / "products").exists()  # the real products untouched
    nbcellar.run(tmp_path / "notebooks" / "ok.py", output=tmp_path / "real.ipynb")
    real = json.loads((tmp_path / "real.ipynb").read_text())  # outside a smoke test: n = 1000
    printed = [
        "".join(o["text"]) for c in real["cells"] for o in c.get("outputs", []) if "text" in o
    ]
    assert printed == [f"{sum(range(1000))}\n"]
    # Smoke-test runs are told apart from the others, in the records and in `nbcellar runs`.
    ok_runs = [r for r in nbcellar.runs().records if r.notebook.endswith("ok.py")]
    assert [r.smoke for r in ok_runs] == [True, False]
    listed = CliRunner().invoke(cli, ["runs"], terminal_width=200).stdout
    assert "ok.py (smoke)" in listed
    assert "make.py (smoke)" in listed


@pytest.mark.long
def test_the_next_push_runs_only_what_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path)
    monkeypatch.chdir(tmp_path)
    first = CliRunner().invoke(cli, ["test"])
    assert first.exit_code == 0, first.output
    source = tmp_path / "notebooks" / "ok.py"
    source.write_text(OK.replace("print(total)", "print(total * 2)"))
    again = CliRunner().invoke(cli, ["test", "--changed"])
    assert again.exit_code == 0, again.output
    assert lines(again.stdout) == {
        "notebooks/ok.py": "PASSED", "notebooks/skipping.py": "PASSED",
        "flow/make": "UNCHANGED", "flow/use": "UNCHANGED",
    }  # fmt: skip
    ok = next(ln for ln in again.stdout.splitlines() if "notebooks/ok.py" in ln)
    assert "(1 of 3 cells ran, 2 restored" in ok  # the edited cell only
    third = CliRunner().invoke(cli, ["test", "--changed"])
    assert lines(third.stdout)["notebooks/ok.py"] == "UNCHANGED"


def test_a_failed_task_is_built_once_however_many_tasks_need_it(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """Each task's item builds what it needs; one that failed in this session is not built
    again for every task after it: they are skipped, naming it."""
    flow = pytester.path / "flow"
    flow.mkdir()
    (flow / "pipeline.yaml").write_text(PIPELINE + "  - source: again.py\n")
    (flow / "make.py").write_text(MAKE.replace("open(product", "1 / 0\nopen(product"))
    (flow / "use.py").write_text(USE)
    (flow / "again.py").write_text(USE)
    store = tmp_path / ".nbcellar"
    done = pytester.runpytest_subprocess("--nbcellar", f"--nbcellar-store={store}", "-rs")
    done.assert_outcomes(failed=1, skipped=2)
    done.stdout.fnmatch_lines(["*an upstream task failed: *make*"])
    made = [r for r in nbcellar.runs(store=store).records if r.notebook.endswith("make.py")]
    assert [r.status for r in made] == ["failed"]  # built once, not once per task needing it


@pytest.mark.long
def test_pytest_collects_notebooks_and_tasks_and_a_carried_store_restores_them(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    project(pytester.path)
    (pytester.path / "notebooks" / "bad.py").write_text(BAD)
    store = tmp_path / "carried" / ".nbcellar"
    first = pytester.runpytest_subprocess("--nbcellar", f"--nbcellar-store={store}", "-v")
    first.assert_outcomes(passed=4, failed=1)
    first.stdout.fnmatch_lines(["*cell [[]2] raised ValueError: bad rows*",
                                "*raise ValueError('bad rows')*"])  # fmt: skip
    ran_first = sum(r.cells.get("ran", 0) for r in nbcellar.runs(store=store).records)
    second = pytester.runpytest_subprocess("--nbcellar", f"--nbcellar-store={store}")
    second.assert_outcomes(passed=4, failed=1)
    records = nbcellar.runs(store=store).records
    ok = [r for r in records if r.notebook.endswith("ok.py")]
    assert ok[-1].cells["restored"] == ok[-1].cells["total"]  # the carried store served it
    assert ran_first > 0
    fresh = tmp_path / "fresh" / ".nbcellar"  # without the carried store: everything runs
    third = pytester.runpytest_subprocess("--nbcellar", f"--nbcellar-store={fresh}")
    third.assert_outcomes(passed=4, failed=1)
    ok = [r for r in nbcellar.runs(store=fresh).records if r.notebook.endswith("ok.py")]
    assert ok[-1].cells["ran"] == ok[-1].cells["total"]
    changed = pytester.runpytest_subprocess("--nbcellar", f"--nbcellar-store={store}",
                                            "--nbcellar-changed", "-rs")  # fmt: skip
    changed.stdout.fnmatch_lines(["*unchanged since its last green run*"])
    plain = pytester.runpytest_subprocess()  # without --nbcellar: nothing of ours collected
    plain.assert_outcomes()
    side = tmp_path / "side" / ".nbcellar"  # pytest-xdist: two workers, a pipeline on one
    parallel = pytester.runpytest_subprocess("--nbcellar", f"--nbcellar-store={side}", "-n",
                                             "2", "--dist", "loadgroup")  # fmt: skip
    parallel.assert_outcomes(passed=4, failed=1)


def test_pytest_collects_what_nbcellar_test_runs_and_no_products_or_pairs(
    pytester: pytest.Pytester,
) -> None:
    """As ``nbcellar test`` finds them: a pipeline.yaml's tasks (a task's jupytext pair is
    that task, not a notebook of its own), a pipeline found without one (each task an item
    that builds what it needs), notebooks; never products or executed notebooks (running one
    would write into the real build)."""
    project(pytester.path)
    flow = pytester.path / "flow"
    (flow / "use.ipynb").write_text(json.dumps(nbformat.v4.new_notebook()))  # (use.py's pair)
    (flow / "products").mkdir()
    (flow / "products" / "make.ipynb").write_text(json.dumps(nbformat.v4.new_notebook()))
    (flow / "explore.py").write_text(OK)  # (beside the pipeline, not one of its tasks)
    chain = pytester.path / "chain"
    (chain / "tasks").mkdir(parents=True)
    (chain / "tasks" / "first.py").write_text("# %% tags=['parameters']\nupstream = None\n")
    (chain / "second.py").write_text("# %% tags=['parameters']\nupstream = ['first']\n")
    (chain / "products").mkdir()
    (chain / "products" / "first.ipynb").write_text(json.dumps(nbformat.v4.new_notebook()))
    collected = pytester.runpytest_subprocess("--nbcellar", "--collect-only", "-q")
    items = {ln for ln in collected.stdout.lines if "::" in ln}
    assert items == {
        "chain/second.py::second",
        "chain/tasks/first.py::first",
        "flow/pipeline.yaml::make",
        "flow/pipeline.yaml::use",
        "flow/explore.py::explore.py",
        "notebooks/ok.py::ok.py",
        "notebooks/skipping.py::skipping.py",
    }
    # and `nbcellar test` finds the same: the notebooks, and the two pipelines for their tasks
    from nbcellar.smoke import find

    found = find([pytester.path])
    assert {p.relative_to(pytester.path).as_posix() for p in found.notebooks} == {
        "flow/explore.py", "notebooks/ok.py", "notebooks/skipping.py",
    }  # fmt: skip
    assert {p.relative_to(pytester.path).as_posix() for p in found.pipelines} == {
        "chain", "flow",
    }  # fmt: skip


def test_a_bad_pipeline_under_test_is_one_line_however_quickly_the_command_ends(
    tmp_path: Path,
) -> None:
    """The session's fork server, started ahead in a folder of its own, ends quietly when the
    command ends before it serves (here: the pipeline is refused at once)."""
    import subprocess
    import sys

    (tmp_path / "pipeline.yaml").write_text(
        "tasks:\n  - source: a.py\n    upstream: [b]\n  - source: b.py\n    upstream: [a]\n"
    )
    for name in ("a", "b"):
        (tmp_path / f"{name}.py").write_text("# %%\nx = 1\n")
    nbcellar_command = str(Path(sys.executable).with_name("nbcellar"))
    for _ in range(4):  # (the server's start races the command's end)
        # (its stderr is the server's too, read until the server has ended)
        done = subprocess.run([nbcellar_command, "test"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 2
        assert done.stderr.splitlines() == [
            f"nbcellar: error: {tmp_path / 'pipeline.yaml'}: the tasks form a cycle: "
            "a -> b -> a; one of them must not need the other"
        ]
