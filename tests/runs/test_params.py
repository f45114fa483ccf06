"""Parameters and grids, papermill's way: parsing, expansion, injection (no kernel)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbcellar.notebook.model import Cell, Notebook
from nbcellar.runs.params import (
    INJECTED_TAG,
    ParameterError,
    declared,
    expand,
    inject,
    parse_assignment,
    parse_value,
    unknown,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10", 10),
        ("1e-3", 0.001),
        ("0.5", 0.5),
        ("rf", "rf"),
        ("'a b'", "a b"),
        ("True", True),
        ("true", True),
        ("None", None),
        ("null", None),
        ("[10, 100]", [10, 100]),
        ("{'depth': 3}", {"depth": 3}),
        ("{depth: 3}", {"depth": 3}),
        ("", ""),
    ],
)
def test_values_read_as_python_then_yaml(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_lists_and_commas_give_choices() -> None:
    assert parse_assignment("n=10") == ("n", [10])
    assert parse_assignment("n=[10,100]") == ("n", [10, 100])
    assert parse_assignment("n=10,100") == ("n", [10, 100])
    assert parse_assignment("model=rf,svm") == ("model", ["rf", "svm"])
    assert parse_assignment("name='a,b'") == ("name", ["a,b"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("n", "expected NAME=VALUE"),
        ("=3", "expected NAME=VALUE"),
        ("2x=3", "not a valid Python name"),
        ("class=3", "not a valid Python name"),
        ("n=[1, 2", "cannot read"),
        ("n=[]", "empty list"),
    ],
)
def test_malformed_assignments_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        parse_assignment(text)


def test_a_grid_is_every_combination(tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("model: [rf, svm]\nn: [10, 100]\n")
    runs = expand(["seed=1"], grid)
    assert runs == [
        {"model": "rf", "n": 10, "seed": 1},
        {"model": "rf", "n": 100, "seed": 1},
        {"model": "svm", "n": 10, "seed": 1},
        {"model": "svm", "n": 100, "seed": 1},
    ]
    assert expand(["a=1,2", "b=x"]) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert expand([]) == [{}]


def test_a_list_of_grids_runs_each_in_order(tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("- {model: rf, depth: [3, 5]}\n- {model: linear}\n")
    assert expand([], grid) == [
        {"model": "rf", "depth": 3},
        {"model": "rf", "depth": 5},
        {"model": "linear"},
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model: [rf\n", "not valid YAML"),
        ("42\n", "expected a mapping"),
        ("- {}\n", "expected a mapping"),
        ("n: []\n", "empty list"),
        ("2n: [1]\n", "not a valid Python name"),
    ],
)
def test_bad_grids_say_where(tmp_path: Path, text: str, message: str) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(text)
    with pytest.raises(ParameterError, match=message) as caught:
        expand([], grid)
    assert str(grid) in str(caught.value)
    with pytest.raises(ParameterError, match="cannot read the grid"):
        expand([], tmp_path / "missing.yaml")


def notebook(*cells: Cell) -> Notebook:
    return Notebook(cells=cells)


def test_injected_cell_goes_after_the_parameters_cell_and_replaces_an_earlier_one() -> None:
    nb = notebook(
        Cell("markdown", "# Title"),
        Cell("code", "import math"),
        Cell("code", "n = 10\nmodel = 'rf'", metadata={"tags": ["parameters"]}),
        Cell("code", "print(n, model)"),
    )
    assert declared(nb) == ["model", "n"]
    assert unknown(nb, {"n": 1, "depth": 3}) == ["depth"]
    once = inject(nb, {"n": 100, "model": "svm"})
    assert [c.source for c in once.cells][2:4] == [
        "n = 10\nmodel = 'rf'",
        "# Parameters\nn = 100\nmodel = 'svm'",
    ]
    assert once.cells[3].tags == (INJECTED_TAG,)
    again = inject(once, {"n": 5})
    assert [c.source for c in again.cells].count("# Parameters\nn = 5") == 1
    assert sum(c.has_tag(INJECTED_TAG) for c in again.cells) == 1
    assert len(again.cells) == 5


def test_without_a_parameters_cell_the_values_go_first() -> None:
    nb = notebook(Cell("code", "print(n)"))
    assert unknown(nb, {"n": 1}) == ["n"]
    assert inject(nb, {"n": 1}).cells[0].source == "# Parameters\nn = 1"
    assert inject(nb, {}) is nb


def test_values_a_cell_cannot_hold_are_refused() -> None:
    nb = notebook(Cell("code", "x = 1", metadata={"tags": ["parameters"]}))
    with pytest.raises(ParameterError, match="cannot be written into a cell"):
        inject(nb, {"x": float("nan")})


def test_a_table_row_names_a_pipeline_tasks_paths_by_their_tasks_and_files() -> None:
    from nbcellar.runs.params import short_label

    given = {
        "upstream": {"clean": {"nb": "/p/products/clean.ipynb"}, "features": {}},
        "product": {"nb": "/p/products/model.ipynb", "model": "/p/products/model.pkl"},
        "alpha": 0.5,
    }
    assert short_label(given) == (
        "upstream=clean,features, product=model.ipynb,model.pkl, alpha=0.5"
    )
    # A first task's: nothing upstream, so nothing said of it.
    assert short_label({"upstream": {}, "product": {"nb": "/p/load.ipynb"}}) == "product=load.ipynb"
    assert short_label({"upstream": None, "name": "a b"}) == "upstream=None, name='a b'"
