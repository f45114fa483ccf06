"""The dependency graph of a notebook: which cell's writes feed which later cell's reads.

A cell depends on the last earlier cell that wrote a name it reads or mutates, on every cell that
mutated that name since, and on the latest cell whose writes nbcellar cannot see (``import *``,
``%run``, ``exec``) when no later cell wrote the name. Calling a function defined earlier reads
the globals that function reads, transitively.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nbcellar.analysis.cell import CellAnalysis
from nbcellar.analysis.names import FunctionInfo


@dataclass(frozen=True)
class CellGraph:
    """Direct dependencies between cells, by position in the analysed sequence."""

    analyses: tuple[CellAnalysis, ...]
    parents: tuple[frozenset[int], ...]
    reasons: Mapping[tuple[int, int], frozenset[str]]
    effective_reads: tuple[frozenset[str], ...]

    def __len__(self) -> int:
        return len(self.analyses)

    def children(self, index: int) -> frozenset[int]:
        return frozenset(j for j, ps in enumerate(self.parents) if index in ps)

    def downstream(self, index: int) -> frozenset[int]:
        """Every cell whose inputs may change when cell ``index`` changes (not itself)."""
        found: set[int] = set()
        for j in range(index + 1, len(self.parents)):
            if self.parents[j] & (found | {index}):
                found.add(j)
        return frozenset(found)

    def upstream(self, index: int) -> frozenset[int]:
        """Every cell that cell ``index`` depends on, directly or through others."""
        found: set[int] = set()
        todo = list(self.parents[index])
        while todo:
            i = todo.pop()
            if i not in found:
                found.add(i)
                todo.extend(self.parents[i])
        return frozenset(found)

    def edges(self) -> list[tuple[int, int, frozenset[str]]]:
        """``(parent, child, names)`` for every edge, in notebook order."""
        return [(i, j, self.reasons[(i, j)]) for (i, j) in sorted(self.reasons)]


def reads_through_calls(
    analysis: CellAnalysis, functions: Mapping[str, FunctionInfo]
) -> tuple[set[str], set[str], set[str]]:
    """Globals read, written and mutated by the earlier-defined functions a cell may call."""
    reads: set[str] = set()
    writes: set[str] = set()
    mutated: set[str] = set()
    seen: set[str] = set()
    todo = [n for n in analysis.reads if n in functions]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        info = functions[name]
        reads |= info.globals_read
        writes |= info.globals_written
        mutated |= info.globals_mutated
        todo.extend(n for n in info.globals_read if n in functions)
    return reads, writes, mutated


def build_graph(analyses: Sequence[CellAnalysis]) -> CellGraph:
    """Build the graph of a sequence of code cells given in execution order."""
    last_writer: dict[str, int] = {}
    mutators: dict[str, list[int]] = {}
    unknown_writer: int | None = None
    functions: dict[str, FunctionInfo] = {}
    parents: list[frozenset[int]] = []
    reasons: dict[tuple[int, int], set[str]] = {}
    effective: list[frozenset[str]] = []

    for j, cell in enumerate(analyses):
        called_reads, called_writes, called_mutated = reads_through_calls(cell, functions)
        needed = cell.reads | cell.mutated | called_reads | called_mutated
        mine: set[int] = set()
        for name in needed:
            sources = set(mutators.get(name, ()))
            writer = last_writer.get(name)
            if writer is not None:
                sources.add(writer)
            if unknown_writer is not None and (writer is None or writer < unknown_writer):
                sources.add(unknown_writer)
            for i in sources:
                reasons.setdefault((i, j), set()).add(name)
            mine |= sources
        if cell.reads_unknown:
            for i in range(j):
                reasons.setdefault((i, j), set()).add("*")
            mine |= set(range(j))
        parents.append(frozenset(mine))
        effective.append(frozenset(needed))

        writes = cell.writes | called_writes
        for name in writes:
            last_writer[name] = j
            mutators[name] = []
            functions.pop(name, None)
        for name in (cell.mutated | called_mutated) - writes:
            mutators.setdefault(name, []).append(j)
        if cell.writes_unknown:
            unknown_writer = j
        functions.update(cell.functions)

    return CellGraph(
        analyses=tuple(analyses),
        parents=tuple(parents),
        reasons={k: frozenset(v) for k, v in reasons.items()},
        effective_reads=tuple(effective),
    )
