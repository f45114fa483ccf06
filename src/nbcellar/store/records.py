"""Records that cross layers: snapshots and the variables in them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NewType

SnapshotId = NewType("SnapshotId", str)


@dataclass(frozen=True)
class VariableRecord:
    """One name in a snapshot: where its value is stored, or why it could not be."""

    name: str
    type_name: str
    value_key: str | None = None
    nbytes: int = 0
    module: str | None = None
    unserializable: str | None = None
    # Modules whose code the value refers to rather than contains; known right after a save.
    references: tuple[str, ...] = field(default=(), compare=False)
    # Other variables the stored value refers to by name; known right after a save.
    refers_to: tuple[str, ...] = field(default=(), compare=False)

    @property
    def stored(self) -> bool:
        return self.value_key is not None or self.module is not None


@dataclass(frozen=True)
class Snapshot:
    """A saved namespace. ``written_bytes`` is what this save added to the store."""

    id: SnapshotId
    created: float
    variables: tuple[VariableRecord, ...]
    label: str = ""
    parent: SnapshotId | None = None
    nbytes: int = 0
    written_bytes: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)

    def __getitem__(self, name: str) -> VariableRecord:
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise KeyError(name)

    @property
    def unserializable(self) -> dict[str, str]:
        """Names that could not be stored, with the reason for each."""
        return {v.name: v.unserializable for v in self.variables if v.unserializable}


@dataclass(frozen=True)
class Restored:
    """What a load gave back: the values, and for each name that could not be loaded, why."""

    values: dict[str, object]
    missing: dict[str, str] = field(default_factory=dict)
