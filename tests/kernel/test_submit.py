"""``nbcellar.submit``: the cells an expression needs, of those run in a notebook, as a job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbcellar.errors import NbcellarError
from nbcellar.slices import SliceError
from tests.kernel.conftest import Session

CELLS = [
    "import random\nimport statistics",
    "random.seed(7)",
    "data = [random.gauss(0, 1) for _ in range(200)]",
    "print(data[:3])",  # exploratory
    "scale = 3",
    "def train(xs, k):\n    return round(statistics.mean(x * k for x in xs), 9)",
    "summary = statistics.stdev(data)",  # exploratory
    "scaled = [x * 2 for x in data]",  # not needed
]


def test_the_dry_run_shows_the_cells_the_expression_needs(session: Session) -> None:
    session.start(cached=True)
    session.run_all(CELLS)
    import nbcellar

    shown = nbcellar.submit("train(data, scale)", dry_run=True)
    sources = [c.source for c in shown.cells]
    assert sources == [CELLS[0], CELLS[1], CELLS[2], CELLS[4], CELLS[5]]
    assert "random" in shown.cells[1].why  # the seed: kernel state the draws read
    numbers = [cell.number for cell in session.extension.ran]  # (the shell counts on)
    assert set(shown.left_out) == {f"In[{numbers[i]}]" for i in (3, 6, 7)}
    assert "train(data, scale)" in shown._repr_html_()
    assert "left out" in shown.text()


def test_a_submitted_slice_gives_the_value_the_notebook_gives(session: Session) -> None:
    session.start(cached=True)
    session.run_all([*CELLS, "print('training on', len(data))"])
    expected = session.run("train(data, scale)").result
    import nbcellar

    job = nbcellar.submit("train(data, scale)")
    assert repr(job.result(timeout=120)) == expected
    assert job.status() == "ok"
    record = job._record()
    # The cells run here are restored from the store in the job's kernel, not recomputed.
    assert record.cells["restored"] >= 4, record.cells
    other = nbcellar.submit("train(data, scale)", params={"scale": 5})
    assert other.result(timeout=120) == pytest.approx(float(expected) * 5 / 3)
    assert other._record().params == {"scale": 5}


def test_a_grid_submits_one_job_per_parameter_set(session: Session) -> None:
    session.start(cached=True)
    report = "def report(xs, k):\n    print('scale is', k)\n    return train(xs, k)"
    session.run_all([*CELLS, report])
    import nbcellar

    submitted = nbcellar.submit("report(data, scale)", grid={"scale": [1, 2]})
    assert len(submitted) == 2
    one, two = (job.result(timeout=120) for job in submitted)
    assert two == pytest.approx(2 * one)
    assert [job.params for job in submitted] == [{"scale": 1}, {"scale": 2}]
    assert "scale is 2" in submitted[1].logs()
    assert len({job.launch for job in submitted}) == 1  # one launch: one line of nbcellar jobs
    from nbcellar.runs.jobs import jobs

    listed = jobs(session.store_dir)
    assert [j.id for j in listed] == [submitted[0].launch]
    assert listed[0].counts() == {"ok": 2}


def test_a_value_no_cell_made_is_sent_along(session: Session) -> None:
    session.start(cached=True)
    session.run_all(CELLS)
    session.shell.user_ns["offset"] = 0.5  # (set from outside any cell: a callback, a widget)
    expected = session.run("train(data, scale) + offset").result
    import nbcellar

    shown = nbcellar.submit("train(data, scale) + offset", dry_run=True)
    assert shown.shipped == {"offset": "float"}
    assert "sent as a value: offset" in shown.text()
    job = nbcellar.submit("train(data, scale) + offset")
    assert repr(job.result(timeout=120)) == expected


def test_what_cannot_be_sliced_is_named_before_anything_is_sent(session: Session) -> None:
    import nbcellar

    session.start(cached=False)
    with pytest.raises(SliceError, match="%load_ext nbcellar"):
        nbcellar.submit("1 + 1")
    session.start(cached=True)
    session.run_all(CELLS)
    session.shell.user_ns["lock"] = __import__("threading").Lock()
    cases = {
        "x = train(data, scale)": "a statement, not an expression",
        "train(data,": "not Python",
        "train(data, missing)": "reads missing, which no cell run so far defined",
        "(train(data, scale), lock)": "needs lock, which no cell run so far made",
    }
    for expression, said in cases.items():
        with pytest.raises(SliceError, match=said):
            nbcellar.submit(expression)
    with pytest.raises(SliceError, match="never uses epochs"):
        nbcellar.submit("train(data, scale)", params={"epochs": 3})
    with pytest.raises(NbcellarError, match="unknown executor 'nowhere'"):
        nbcellar.submit("train(data, scale)", executor="nowhere")
    assert not (session.store_dir / "slices").exists()  # nothing was sent


def test_parameters_set_apart_and_used_between_are_refused(session: Session) -> None:
    import nbcellar

    session.start(cached=True)
    session.run_all(["a = 1", "b = a + 1", "c = 2", "def f():\n    return b * c"])
    with pytest.raises(SliceError, match=r"a is set in In\[\d+\] and used in In\[\d+\]"):
        nbcellar.submit("f()", params={"a": 5, "c": 3}, dry_run=True)
    shown = nbcellar.submit("f()", params={"c": 3}, dry_run=True)
    assert list(shown.parameters) == ["c"]
    assert shown.parameters["c"].endswith("given by the job")


def test_a_cell_not_in_the_notebook_is_named(session: Session, tmp_path: Path) -> None:
    import nbcellar

    session.start(cached=True)
    session.run_all(CELLS)
    session.run("scale = 4")  # typed at a console attached to the kernel
    notebook = tmp_path / "analysis.ipynb"
    cells = [{"cell_type": "code", "source": c, "metadata": {}, "outputs": [],
              "execution_count": None} for c in ["%load_ext nbcellar", *CELLS]]  # fmt: skip
    notebook.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                    "nbformat_minor": 4}))  # fmt: skip
    session.shell.user_ns["__session__"] = str(notebook)  # (Jupyter says which file it runs)
    with pytest.raises(SliceError, match=r"In\[\d+\] \('scale = 4'\) made scale, which .* not a "
                                         r"cell of analysis.ipynb"):  # fmt: skip
        nbcellar.submit("train(data, scale)")
    assert nbcellar.submit("len(data)", dry_run=True).cells  # (what the file has is fine)


def test_the_project_modules_the_slice_imports_go_with_it(session: Session) -> None:
    import nbcellar

    (session.project / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    session.start(cached=True)
    session.run_all(["import helpers", "import json", "n = helpers.double(21)"])
    shown = nbcellar.submit("n + 1", dry_run=True)
    assert shown.modules == ("helpers.py",)
    assert [c.source for c in shown.cells] == ["import helpers", "n = helpers.double(21)"]
    assert nbcellar.submit("n + 1").result(timeout=120) == 43


def test_a_cell_that_submitted_is_not_part_of_a_later_slice(session: Session) -> None:
    session.start(cached=True)
    session.run_all([*CELLS, "import nbcellar"])
    submitting = session.run("job = nbcellar.submit('train(data, scale)')")
    assert submitting.outcome is not None
    assert not submitting.outcome.recorded  # (run again, it submits again: never restored)
    assert session.run("job.result(timeout=120)").success
    shown = session.ns["nbcellar"].submit("train(data, 2 * scale)", dry_run=True)
    assert not any("submit" in c.source for c in shown.cells), shown.text()
