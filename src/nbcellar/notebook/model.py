"""The small notebook model every layer works with: a Notebook is metadata plus ordered Cells.

The model keeps exactly what nbformat keeps (metadata, attachments, outputs, execution counts,
cell ids, and fields it has no name for, in ``extra``), so reading a file and writing it back
gives the same notebook, even one that strays from the schema. Cell tags live where
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
    """One notebook cell. ``id`` is None for notebooks older than nbformat 4.5.

    ``extra`` holds the cell's fields the model has no name for (``outputs`` on a markdown cell,
    a tool's own key) and named ones whose value it cannot hold (a ``null`` id), as read: they
    are written back unchanged.
    """

    cell_type: CellType
    source: str
    id: CellId | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    outputs: Sequence[Mapping[str, Any]] = ()
    execution_count: int | None = None
    attachments: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tags(self) -> tuple[str, ...]:
        tags = self.metadata.get("tags", ())
        if isinstance(tags, str):  # one tag written as a string: Jupyter shows it as that tag
            return (tags,)
        if not isinstance(tags, list | tuple):
            return ()
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
    """A notebook: its metadata, its cells in order, and the nbformat version it was read as
    (``extra``: top-level fields the schema does not name, written back unchanged)."""

    cells: tuple[Cell, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    nbformat: int = 4
    nbformat_minor: int = 5
    extra: Mapping[str, Any] = field(default_factory=dict)

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


_NOTEBOOK_FIELDS = frozenset({"cells", "metadata", "nbformat", "nbformat_minor"})
_TEXT_CELL_FIELDS = frozenset({"cell_type", "source", "id", "metadata", "attachments"})
_CODE_CELL_FIELDS = _TEXT_CELL_FIELDS | {"outputs", "execution_count"}


def _cell_from(raw: Mapping[str, Any]) -> Cell:
    """One cell of the model; what its fields cannot hold as read goes to ``extra``."""
    is_code = raw["cell_type"] == "code"
    named = _CODE_CELL_FIELDS if is_code else _TEXT_CELL_FIELDS
    extra = {k: v for k, v in raw.items() if k not in named}
    source = raw.get("source", "")
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        source = "".join(source)
    elif not isinstance(source, str):
        extra["source"], source = source, ""
    cell_id = raw.get("id")
    if "id" in raw and not isinstance(cell_id, str):
        extra["id"], cell_id = cell_id, None
    count = raw.get("execution_count") if is_code else None
    if is_code and (isinstance(count, bool) or not isinstance(count, int | None)):
        extra["execution_count"], count = count, None
    outputs = raw.get("outputs", ()) if is_code else ()
    if not isinstance(outputs, list | tuple):
        extra["outputs"], outputs = outputs, ()
    attachments = raw.get("attachments")
    if "attachments" in raw and not isinstance(attachments, Mapping):
        extra["attachments"], attachments = attachments, None
    return Cell(
        cell_type=raw["cell_type"],
        source=source,
        id=CellId(cell_id) if cell_id is not None else None,
        metadata=dict(raw.get("metadata", {})),
        outputs=tuple(outputs),
        execution_count=count,
        attachments=dict(attachments) if attachments is not None else None,
        extra=extra,
    )


def from_nbformat(node: Mapping[str, Any]) -> Notebook:
    """Build the model from an nbformat v4 notebook node (or the equivalent plain dict)."""
    node = copy.deepcopy(dict(node))
    return Notebook(
        cells=tuple(_cell_from(raw) for raw in node.get("cells", [])),
        metadata=dict(node.get("metadata", {})),
        nbformat=int(node.get("nbformat", 4)),
        # a missing minor version reads as 0, as nbformat reads it
        nbformat_minor=int(node.get("nbformat_minor", 0)),
        extra={k: v for k, v in node.items() if k not in _NOTEBOOK_FIELDS},
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
        if isinstance(cell, dict) and "id" not in cell:  # an id given, even a bad one, stays
            candidate = f"cell-{index}"
            while candidate in taken:
                candidate += "x"
            cell["id"] = candidate
            taken.add(candidate)


def to_nbformat(nb: Notebook) -> Any:
    """Turn the model back into an ``nbformat.NotebookNode``, every field kept, to run or write."""
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
        if cell.attachments is not None:
            raw["attachments"] = copy.deepcopy(dict(cell.attachments))
        raw.update(copy.deepcopy(dict(cell.extra)))
        cells.append(raw)
    data = {
        **copy.deepcopy(dict(nb.extra)),
        "cells": cells,
        "metadata": copy.deepcopy(dict(nb.metadata)),
        "nbformat": nb.nbformat,
        "nbformat_minor": nb.nbformat_minor,
    }
    fill_missing_ids(data)
    return nbformat.from_dict(data)
