"""The small notebook model every layer works with: a Notebook is metadata plus ordered Cells.

The model keeps exactly what nbformat keeps (metadata, attachments, outputs, execution counts,
cell ids), so reading a file and writing it back gives the same notebook. Cell tags live where
Jupyter keeps them, in ``metadata["tags"]``; :attr:`Cell.tags` reads them from there so there is
one source of truth.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NewType

CellId = NewType("CellId", str)
CellType = Literal["code", "markdown", "raw"]

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class Cell:
    """One notebook cell. ``id`` is None for notebooks older than nbformat 4.5."""

    cell_type: CellType
    source: str
    id: CellId | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    outputs: Sequence[Mapping[str, Any]] = ()
    execution_count: int | None = None
    attachments: Mapping[str, Any] | None = None

    @property
    def tags(self) -> tuple[str, ...]:
        tags = self.metadata.get("tags", ())
        return tuple(str(t) for t in tags)

    @property
    def is_code(self) -> bool:
        return self.cell_type == "code"

    def has_tag(self, tag: str) -> bool:
        return tag in self.tags

    def tag_values(self, prefix: str) -> tuple[str, ...]:
        """Values of ``prefix:value`` tags, e.g. ``tag_values("depends")`` -> ``("data.csv",)``."""
        head = prefix + ":"
        return tuple(t[len(head) :] for t in self.tags if t.startswith(head))

    def with_tags(self, tags: Sequence[str]) -> Cell:
        metadata = dict(self.metadata)
        if tags:
            metadata["tags"] = list(tags)
        else:
            metadata.pop("tags", None)
        return replace(self, metadata=metadata)


@dataclass(frozen=True)
class Notebook:
    """A notebook: its metadata, its cells in order, and the nbformat version it was read as."""

    cells: tuple[Cell, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    nbformat: int = 4
    nbformat_minor: int = 5

    def __iter__(self) -> Iterator[Cell]:
        return iter(self.cells)

    def __len__(self) -> int:
        return len(self.cells)

    @property
    def code_cells(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.is_code)

    @property
    def kernel_name(self) -> str | None:
        spec = self.metadata.get("kernelspec") or {}
        name = spec.get("name") if isinstance(spec, Mapping) else None
        return str(name) if name else None


def from_nbformat(node: Mapping[str, Any]) -> Notebook:
    """Build the model from an nbformat v4 notebook node (or the equivalent plain dict)."""
    node = copy.deepcopy(dict(node))
    cells = []
    for raw in node.get("cells", []):
        source = raw.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        cells.append(
            Cell(
                cell_type=raw["cell_type"],
                source=source,
                id=CellId(raw["id"]) if raw.get("id") is not None else None,
                metadata=dict(raw.get("metadata", {})),
                outputs=tuple(raw.get("outputs", ())),
                execution_count=raw.get("execution_count"),
                attachments=raw.get("attachments"),
            )
        )
    return Notebook(
        cells=tuple(cells),
        metadata=dict(node.get("metadata", {})),
        nbformat=int(node.get("nbformat", 4)),
        nbformat_minor=int(node.get("nbformat_minor", 5)),
    )


def fill_missing_ids(data: dict[str, Any]) -> None:
    """nbformat >= 4.5 requires cell ids; give missing ones stable ids (``cell-N``) in place."""
    if data.get("nbformat") != 4 or int(data.get("nbformat_minor", 0)) < 5:
        return
    cells = data.get("cells")
    if not isinstance(cells, list):
        return
    taken = {c.get("id") for c in cells if isinstance(c, dict)}
    for index, cell in enumerate(cells):
        if isinstance(cell, dict) and not cell.get("id"):
            candidate = f"cell-{index}"
            while candidate in taken:
                candidate += "x"
            cell["id"] = candidate
            taken.add(candidate)


def to_nbformat(nb: Notebook) -> Any:
    """Turn the model back into an ``nbformat.NotebookNode`` ready to validate and write."""
    import nbformat

    cells: list[JSONDict] = []
    for cell in nb.cells:
        raw: JSONDict = {
            "cell_type": cell.cell_type,
            "metadata": copy.deepcopy(dict(cell.metadata)),
            "source": cell.source,
        }
        if cell.id is not None:
            raw["id"] = cell.id
        if cell.cell_type == "code":
            raw["execution_count"] = cell.execution_count
            raw["outputs"] = copy.deepcopy(list(cell.outputs))
        elif cell.attachments is not None:
            raw["attachments"] = copy.deepcopy(dict(cell.attachments))
        cells.append(raw)
    data = {
        "cells": cells,
        "metadata": copy.deepcopy(dict(nb.metadata)),
        "nbformat": nb.nbformat,
        "nbformat_minor": nb.nbformat_minor,
    }
    fill_missing_ids(data)
    return nbformat.from_dict(data)
