"""``nbcellar.run``: the Python API of ``nbcellar run`` (papermill's execute_notebook, with
grids, the cell cache and run records)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import nbcellar
from nbcellar.errors import NbcellarError

pytestmark = pytest.mark.slow

NOTEBOOK = """\
# %% tags=["parameters"]
x = 1

# %%
import time
import nbcellar
started = time.time()

# %%
y = x * 10
nbcellar.log(y=y)
if x < 0:
    raise ValueError("negative x")
"""


def notebook(folder: Path) -> Path:
    path = folder / "calc.py"
    path.write_text(NOTEBOOK)
    return path


def test_one_run_returns_its_recorded_run_and_a_second_restores_it(
    tmp_path: Path, private_store: Path
) -> None:
    path = notebook(tmp_path)
    first = nbcellar.run(path, params={"x": 4})
    assert len(first) == 1
    assert first.values["y"].tolist() == [40]
    assert first.records[0].status == "ok"
    assert first.records[0].cells["ran"] == 4
    assert (tmp_path / "calc.out.ipynb").exists()
    again = nbcellar.run(path, params={"x": 4})
    assert again.records[0].cells["restored"] == 4
    assert again.records[0].id != first.records[0].id


def test_a_grid_runs_every_combination_side_by_side(tmp_path: Path, private_store: Path) -> None:
    path = notebook(tmp_path)
    heard: list[str] = []
    runset = nbcellar.run(path, grid={"x": [1, 2, 3]}, jobs=2,
                          progress=lambda event: heard.append(type(event).__name__))  # fmt: skip
    assert runset.params["x"].tolist() == [1, 2, 3]
    assert runset.values["y"].tolist() == [10, 20, 30]
    assert len({r.grid for r in runset.records}) == 1
    assert heard.count("RunStarted") == 3
    assert heard.count("RunEnded") == 3
    assert heard.count("CellDone") == 12
    assert sorted(p.name for p in (tmp_path / "calc.runs").iterdir()) == [
        "001-x=1.ipynb", "002-x=2.ipynb", "003-x=3.ipynb"]  # fmt: skip


def test_a_failed_run_raises_with_every_run_unless_errors_are_allowed(
    tmp_path: Path, private_store: Path
) -> None:
    path = notebook(tmp_path)
    with pytest.raises(nbcellar.RunFailed, match=r"run 2 of .*calc.py: cell \[4\] raised "
                       "ValueError: negative x") as raised:  # fmt: skip
        nbcellar.run(path, grid={"x": [1, -1]})
    assert [r.status for r in raised.value.runs.records] == ["ok", "failed"]
    allowed = nbcellar.run(path, params={"x": -1}, allow_errors=True, output=tmp_path / "o.ipynb")
    assert allowed.records[0].status == "failed"


def test_a_launch_that_does_not_wait_is_found_again_by_its_id(
    tmp_path: Path, private_store: Path
) -> None:
    path = notebook(tmp_path)
    handle = nbcellar.run(path, grid={"x": [5, 6]}, jobs=2, wait=False)
    assert handle.id.startswith("grid-")
    assert set(handle.status().values()) <= {"queued", "running", "ok"}
    other = nbcellar.runs.attach(handle.id)  # as another process would, from the store
    runset = handle.wait()
    assert runset.values["y"].tolist() == [50, 60]
    assert set(other.status().values()) == {"ok"}
    assert other.wait().values["y"].tolist() == [50, 60]
    with pytest.raises(NbcellarError, match="no launch 'grid-nope'"):
        nbcellar.runs.attach("grid-nope")


def test_cancelling_a_launch_stops_its_runs(tmp_path: Path, private_store: Path) -> None:
    path = tmp_path / "slow.py"
    path.write_text("# %% tags=['parameters']\nx = 1\n# %%\nimport time\ntime.sleep(120)\n")
    handle = nbcellar.run(path, grid={"x": [1, 2, 3]}, jobs=2, wait=False)
    deadline = time.monotonic() + 60
    while list(handle.status().values()).count("running") < 2:
        assert time.monotonic() < deadline, handle.status()
        time.sleep(0.2)
    began = time.monotonic()
    handle.cancel()
    assert time.monotonic() - began < 30
    assert set(handle.status().values()) == {"cancelled"}


def test_cancelling_a_single_run_stops_its_kernel(tmp_path: Path, private_store: Path) -> None:
    path = tmp_path / "slow.py"
    path.write_text("# %%\nimport time\nopen('started', 'w').close()\ntime.sleep(120)\n")
    handle = nbcellar.run(path, wait=False, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert time.monotonic() < deadline, handle.status()
        time.sleep(0.2)
    began = time.monotonic()
    handle.cancel()  # (its kernel is stopped: the cell does not sleep on)
    assert time.monotonic() - began < 30
    assert list(handle.status().values()) == ["cancelled"]


def test_without_the_cache_the_executed_notebooks_are_the_runset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBCELLAR_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    path = notebook(tmp_path)
    runset = nbcellar.run(path, grid={"x": [1, 2]}, cache=False)
    assert len(runset) == 2
    assert not (tmp_path / ".nbcellar").exists()


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"executor": "nope"}, "unknown executor 'nope' (known: dask, ipyparallel, local)"),
        ({"executor": "local://far"}, "'local' takes no address"),
        ({"timeout": 0}, "timeout=0 is not a number of seconds above 0"),
        ({"jobs": 0}, "jobs=0: at least 1"),
        ({"params": {"not a name": 1}}, "'not a name' is not a valid Python name"),
        ({"grid": {"x": []}}, "x has an empty list"),
    ],
)
def test_bad_options_are_one_error_and_nothing_runs(
    options: dict[str, object], said: str, tmp_path: Path, private_store: Path
) -> None:
    path = notebook(tmp_path)
    with pytest.raises(NbcellarError) as raised:
        nbcellar.run(path, **options)  # type: ignore[arg-type]
    assert said in str(raised.value)
    assert not (tmp_path / "calc.out.ipynb").exists()
    assert not private_store.exists()
