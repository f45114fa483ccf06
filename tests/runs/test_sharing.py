"""Grid runs start in an order that lets side-by-side runs compute different shared cells."""

from __future__ import annotations

from nbcellar.notebook.model import Cell, Notebook
from nbcellar.runs.params import inject
from nbcellar.runs.sharing import interleave, parameter_dependencies, signatures


def code(source: str, *tags: str) -> Cell:
    return Cell("code", source, metadata={"tags": list(tags)} if tags else {})


def notebook() -> Notebook:
    cells = [
        code("import math"),
        code("prep = 'a'\nmodel = 'rf'\nsize = 1", "parameters"),
        code("data = [math.sqrt(i) for i in range(10)]"),
        code("features = [d * 2 for d in data] if prep == 'a' else data"),
        code("fitted = (model, size, sum(features))"),
        code("print(fitted)"),
    ]
    return Notebook(cells=tuple(cells))


def grid() -> list[dict[str, object]]:
    return [{"prep": p, "model": m} for p in ("a", "b", "c") for m in ("rf", "svm")]


def test_each_cell_depends_on_the_varied_parameters_it_reads_through_other_cells() -> None:
    nb = inject(notebook(), grid()[0])
    found = parameter_dependencies(nb, ["prep", "model"])
    # import, parameters, injected, data, features, fitted, print
    assert found == [
        frozenset(),
        frozenset(),
        frozenset({"prep", "model"}),
        frozenset(),
        frozenset({"prep"}),
        frozenset({"prep", "model"}),
        frozenset({"prep", "model"}),
    ]


def test_runs_needing_different_shared_cells_start_together() -> None:
    runs = [(params, inject(notebook(), params)) for params in grid()]
    shared = signatures(runs, ["prep", "model"])
    assert shared[0][4] == shared[1][4]  # the features cell of prep 'a' is shared by 2 runs
    assert shared[0][4] != shared[2][4]
    assert shared[0][5] is None  # each run fits its own model
    order = interleave(shared)
    assert sorted(order) == list(range(6))
    assert [runs[i][0]["prep"] for i in order[:3]] == ["a", "b", "c"]
