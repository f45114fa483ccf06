"""Analysis of a whole notebook: every code cell analysed, and the graph between them."""

from __future__ import annotations

from dataclasses import dataclass

from nbcellar.analysis.cell import CellAnalysis, analyze_cell
from nbcellar.analysis.graph import CellGraph, build_graph
from nbcellar.notebook.model import Cell, Notebook


@dataclass(frozen=True)
class NotebookAnalysis:
    """Code cells of a notebook (with their index among all cells), analysed, and their graph."""

    positions: tuple[int, ...]
    cells: tuple[Cell, ...]
    graph: CellGraph

    @property
    def analyses(self) -> tuple[CellAnalysis, ...]:
        return self.graph.analyses

    def node_of(self, cell_id: str) -> int:
        for node, cell in enumerate(self.cells):
            if cell.id == cell_id:
                return node
        raise KeyError(cell_id)


def analyze_notebook(nb: Notebook) -> NotebookAnalysis:
    """Analyse the code cells of ``nb`` in order and build their dependency graph."""
    positions = tuple(i for i, c in enumerate(nb.cells) if c.is_code)
    cells = tuple(nb.cells[i] for i in positions)
    graph = build_graph([analyze_cell(c.source) for c in cells])
    return NotebookAnalysis(positions=positions, cells=cells, graph=graph)
