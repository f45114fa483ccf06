"""The dependency graph: which cell's writes feed which later cells."""

from __future__ import annotations

from nbcellar.analysis import CellGraph, analyze_cell, build_graph


def graph_of(*cells: str) -> CellGraph:
    return build_graph([analyze_cell(c) for c in cells])


def test_reads_link_to_the_last_writer() -> None:
    g = graph_of("a = 1", "a = 2", "b = a", "c = b + a")
    assert g.parents == (frozenset(), frozenset(), {1}, {1, 2})
    assert g.reasons[(1, 3)] == {"a"}
    assert g.reasons[(2, 3)] == {"b"}


def test_downstream_is_transitive_and_excludes_unrelated_cells() -> None:
    g = graph_of(
        "raw = load()",
        "clean = prep(raw)",
        "other = 5",
        "model = fit(clean)",
        "report(model, other)",
    )
    assert g.downstream(0) == {1, 3, 4}
    assert g.downstream(2) == {4}
    assert g.downstream(4) == frozenset()
    assert g.upstream(4) == {0, 1, 2, 3}


def test_mutation_makes_later_readers_depend_on_the_mutating_cell() -> None:
    g = graph_of("xs = [3, 1, 2]", "xs.sort()", "first = xs[0]")
    assert g.parents[1] == {0}
    assert g.parents[2] == {0, 1}
    assert g.downstream(1) == {2}


def test_rebinding_cuts_the_dependency_on_earlier_writers() -> None:
    g = graph_of("x = 1", "x.bit_length()", "x = 5", "y = x")
    assert g.parents[3] == {2}
    assert g.downstream(0) == {1}


def test_calling_a_function_reads_the_globals_it_reads_transitively() -> None:
    g = graph_of(
        "def inner():\n    return scale * 2",
        "def outer():\n    return inner() + offset",
        "scale = 3",
        "offset = 1",
        "result = outer()",
    )
    assert g.parents[4] == {1, 0, 2, 3}
    assert g.downstream(2) == {4}
    assert {"scale", "offset", "inner"} <= g.effective_reads[4]


def test_function_writing_a_global_is_a_writer_where_it_is_called() -> None:
    g = graph_of("def reset():\n    global n\n    n = 0", "reset()", "m = n")
    assert g.parents[2] == {1}


def test_star_import_may_have_written_any_later_read_name() -> None:
    g = graph_of("from math import *", "r = sqrt(2)", "sqrt = None", "q = sqrt")
    assert g.parents[1] == {0}
    assert g.parents[3] == {2}


def test_dynamic_reads_depend_on_every_earlier_cell() -> None:
    g = graph_of("a = 1", "b = 2", "print(eval('a + b'))")
    assert g.parents[2] == {0, 1}
    assert g.reasons[(0, 2)] == {"*"}


def test_cells_with_no_shared_names_are_independent() -> None:
    g = graph_of("import os", "x = 1", "y = 2")
    assert all(not p for p in g.parents)
    assert g.edges() == []
