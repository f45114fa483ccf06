"""Analysis of the corpus of real, executed notebooks under tests/data/notebooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbcellar.analysis import NotebookAnalysis, analyze_notebook
from nbcellar.notebook import read_notebook
from tests.conftest import CORPUS, corpus_notebooks


def analysed(name: str) -> NotebookAnalysis:
    return analyze_notebook(read_notebook(CORPUS / name))


@pytest.mark.parametrize("path", corpus_notebooks(), ids=lambda p: p.name)
def test_every_corpus_cell_is_analysed(path: Path) -> None:
    nb = read_notebook(path)
    result = analyze_notebook(nb)
    assert len(result.analyses) == len(nb.code_cells)
    assert all(a.syntax_error is None for a in result.analyses)
    for node, parents in enumerate(result.graph.parents):
        assert all(p < node for p in parents)


def test_function_globals_defined_later_link_the_calling_cell() -> None:
    result = analysed("basics.ipynb")
    graph = result.graph
    # [2] defines describe() reading GREETING, which [3] defines; [4] calls describe().
    assert result.node_of("basics-04") in graph.downstream(result.node_of("basics-03"))
    assert graph.reasons[(2, 3)] == {"GREETING"}
    assert graph.downstream(result.node_of("basics-03")) == {result.node_of("basics-04")}


def test_parameters_cell_reaches_every_cell_that_uses_a_parameter() -> None:
    result = analysed("ml_pipeline.ipynb")
    params = result.cells.index(next(c for c in result.cells if c.has_tag("parameters")))
    assert params == 0
    assert result.graph.downstream(params) == {2, 3, 4, 5, 6}
    assert result.analyses[params].writes == {"seed", "n", "alpha"}


def test_mutations_in_place_make_dependencies() -> None:
    result = analysed("mutation.ipynb")
    deleting = result.node_of("mutation-04")
    assert result.analyses[deleting].mutated == {"a", "config"}
    assert result.graph.parents[deleting] == {0, 1}
    # Cell [1] builds and aliases its own list: nothing from outside is mutated.
    assert result.analyses[0].mutated == frozenset()


def test_magics_cells_expose_their_code() -> None:
    result = analysed("magics.ipynb")
    last = len(result.cells) - 1
    writers = {p: result.cells[p].source.splitlines()[0] for p in result.graph.parents[last]}
    assert sorted(writers.values()) == ["%%time", "%time x = sum(range(10**5))"]
    capture = result.node_of("magics-04")
    assert result.analyses[capture].writes == {"captured", "z"}
    timeit = result.node_of("magics-03")
    assert result.analyses[timeit].writes == frozenset()


def test_connection_cell_feeds_every_query() -> None:
    result = analysed("sqlite_db.ipynb")
    connect = result.node_of("sqlite-db-02")
    assert result.graph.downstream(connect) == set(range(connect + 1, len(result.cells)))


def test_star_import_feeds_the_cells_that_use_its_names() -> None:
    result = analysed("imports_star.ipynb")
    star = next(i for i, a in enumerate(result.analyses) if a.writes_unknown)
    assert result.graph.children(star)
