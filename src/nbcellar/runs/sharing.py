"""The order in which to start a grid's runs, so that side by side they share the most.

In a grid, a cell whose inputs do not depend on a varied parameter has the same cache key in
every run (3 preprocessings x 16 models: the preprocessing cell has 3 keys, not 48). The cache
lets one kernel compute a key while the others that reach it wait and then restore it; started
in plain order (16 runs of preprocessing A first), two kernels would mostly wait for each other.
:func:`interleave` starts runs that need different shared cells together instead. Which
parameters a cell depends on comes from the static analysis: the names it reads, through the
cells it depends on, back to the ``injected-parameters`` cell. It only orders the work; what
each run computes or restores is decided by the cache keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nbcellar.notebook.model import Notebook

Signature = tuple[int, tuple[tuple[str, str], ...]]


def parameter_dependencies(nb: Notebook, varied: Sequence[str]) -> list[frozenset[str]]:
    """For each code cell of ``nb`` (with its injected cell), the varied parameters its
    inputs depend on."""
    from nbcellar.analysis import analyze_notebook
    from nbcellar.runs.params import INJECTED_TAG

    analysis = analyze_notebook(nb)
    graph = analysis.graph
    wanted = frozenset(varied)
    found: list[frozenset[str]] = []
    passed_on: list[frozenset[str]] = []  # what a cell's readers depend on through it
    for index, cell in enumerate(analysis.cells):
        depends = set(wanted & graph.effective_reads[index])
        if cell.has_tag(INJECTED_TAG):  # readers of a parameter read it by name (above)
            found.append(wanted & graph.analyses[index].writes)
            passed_on.append(frozenset())
            continue
        for parent in graph.parents[index]:
            depends |= passed_on[parent]
        found.append(frozenset(depends))
        passed_on.append(found[-1])
    return found


def signatures(
    runs: Sequence[tuple[Mapping[str, Any], Notebook]], varied: Sequence[str]
) -> list[list[Signature | None]]:
    """For each run and code cell, what identifies the cell's work across runs (its position
    and the values of the parameters it depends on), or None where no other run shares it."""
    if not runs:
        return []
    depends = parameter_dependencies(runs[0][1], varied)
    per_run: list[list[Signature]] = []
    for params, nb in runs:
        if len(nb.code_cells) != len(depends):  # cannot happen for injected copies; be safe
            per_run.append([(-1 - len(per_run), ())])
            continue
        per_run.append(
            [
                (index, tuple(sorted((p, repr(params.get(p))) for p in names)))
                for index, names in enumerate(depends)
            ]
        )
    counts: dict[Signature, int] = {}
    for row in per_run:
        for sig in row:
            counts[sig] = counts.get(sig, 0) + 1
    return [[sig if counts[sig] > 1 else None for sig in row] for row in per_run]


def interleave(shared: Sequence[Sequence[Signature | None]]) -> list[int]:
    """Run positions in the order to start them: round robin over the groups of runs that need
    the same shared cells (those not shared by every run), so that runs started together have
    different cells to compute rather than one to wait for."""
    everyone = set.intersection(*(set(row) for row in shared)) if shared else set()
    groups: dict[tuple[Signature, ...], list[int]] = {}
    for position, row in enumerate(shared):
        key = tuple(sig for sig in row if sig is not None and sig not in everyone)
        groups.setdefault(key, []).append(position)
    order: list[int] = []
    queues = list(groups.values())
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    return order
