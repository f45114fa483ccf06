"""Notebook model and file formats: ``.ipynb`` and percent-format scripts."""

from __future__ import annotations

from nbcellar.notebook.formats import FORMATS, read_notebook, reads, write_notebook, writes
from nbcellar.notebook.model import Cell, CellId, Notebook, from_nbformat, to_nbformat

__all__ = [
    "FORMATS",
    "Cell",
    "CellId",
    "Notebook",
    "from_nbformat",
    "read_notebook",
    "reads",
    "to_nbformat",
    "write_notebook",
    "writes",
]
