"""Pure analysis of cell source: normalised code hashes, names read / written / mutated, graph.

Nothing here does I/O or imports a kernel library; IPython is used only for its input
transformer, imported on first use.
"""

from __future__ import annotations

from nbcellar.analysis.cell import CellAnalysis, CodeHash, analyze_cell, code_hash
from nbcellar.analysis.graph import CellGraph, build_graph
from nbcellar.analysis.names import FunctionInfo
from nbcellar.analysis.notebook import NotebookAnalysis, analyze_notebook

__all__ = [
    "CellAnalysis",
    "CellGraph",
    "CodeHash",
    "FunctionInfo",
    "NotebookAnalysis",
    "analyze_cell",
    "analyze_notebook",
    "build_graph",
    "code_hash",
]
