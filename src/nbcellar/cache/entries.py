"""Cache entries: what a cell run did, kept in the store under its key.

An entry names the snapshot that holds the values the cell wrote or changed in place, the names
it deleted, the values it made that cannot be stored (the cell is run again for those), its
outputs in nbformat's shape, and how long it took.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbcellar.cache.keys import CellKey, KeyInputs
from nbcellar.cache.versions import Version

KIND = "cell"
AMBIENT = "nbcellar:ambient"  # the snapshot variable holding a cell's ambient changes
RESULTS = "nbcellar:results"  # ... and the values its results showed (``_``, ``Out[n]``)
INPLACE = "nbcellar:inplace"  # ... and the state of notebook functions and classes it changed


@dataclass(frozen=True)
class CacheEntry:
    key: CellKey
    inputs: KeyInputs
    snapshot_id: str | None
    written: tuple[str, ...] = ()
    mutated: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    unserializable: Mapping[str, str] = field(default_factory=dict)
    outputs: Sequence[Mapping[str, Any]] = ()
    seconds: float = 0.0
    # Each stored name's version: its stored value's content hash, so a cell that produced
    # the same value again does not make the cells reading it run again.
    versions: Mapping[str, Version] = field(default_factory=dict)
    # What the cell logged with nbcellar.log, summarised (see nbcellar.logbook.summarize); the
    # values JSON cannot hold are in the snapshot, under logbook.RESERVED.
    logged: Sequence[Sequence[Any]] = ()
    # Files the cell wrote in the artifact folder (relative paths); their bytes are in the
    # snapshot, under artifacts.RESERVED_FILES.
    files: tuple[str, ...] = ()
    # Names changed in place that were bound to one object (sorted groups of two or more): a
    # restore is right only where they still are (see CellCache.fits).
    same: tuple[tuple[str, ...], ...] = ()
    # The versions, before the cell ran, of what it changed without reading it (a dict holding
    # an array it changed): a restore is right only where they are the same.
    before: Mapping[str, Version] = field(default_factory=dict)
    # Kernel state outside the variables that the cell changed (see nbcellar.cache.ambient):
    # the providers whose changes are in the snapshot (under AMBIENT), to apply again ...
    ambient: tuple[str, ...] = ()
    # ... the versions the random generators it drew from had before it ...
    drawn: Mapping[str, str] = field(default_factory=dict)
    # ... and why the cell must run again on restore (a change that cannot be applied again).
    rerun: str = ""
    # The versions of all the kernel state outside the variables after it (what a simulated
    # run, ``nbcellar status``, continues from).
    ambient_after: Mapping[str, str] = field(default_factory=dict)
    # Of ``mutated``: notebook functions and classes whose state (under INPLACE) is put back
    # into the live objects on restore, not bound anew (instances and registries hold them).
    inplace: tuple[str, ...] = ()
    # The files outside the artifact folder that the cell opened (see nbcellar.cache.files):
    # the version each must have for a restore to be right (those it read as it read them,
    # those it wrote as it left them), and which of them it wrote.
    touched: Mapping[str, str] = field(default_factory=dict)
    wrote: tuple[str, ...] = ()

    def version(self, name: str) -> Version:
        """The version of what the entry's cell left under ``name``: its stored content, or
        (a value it could not store) the cell run that made it."""
        return self.versions.get(name) or Version.cell(self.key)

    @property
    def has_results(self) -> bool:
        """Whether its snapshot holds the values its results showed (``_``, ``Out[n]``)."""
        return any(
            o.get("output_type") == "execute_result" and isinstance(o.get("result"), int)
            for o in self.outputs
        )

    @property
    def stored_names(self) -> tuple[str, ...]:
        return tuple(
            n for n in (*self.written, *self.mutated)
            if n not in self.unserializable and n not in self.deleted and n not in self.inplace
        )  # fmt: skip

    @property
    def replays(self) -> bool:
        """Whether a restore runs the cell again (for values or state it could not store)."""
        return bool(self.unserializable or self.rerun)

    def to_bytes(self) -> bytes:
        data = {
            "inputs": self.inputs.to_json(),
            "written": list(self.written),
            "mutated": list(self.mutated),
            "deleted": list(self.deleted),
            "unserializable": dict(self.unserializable),
            "outputs": list(self.outputs),
            "seconds": self.seconds,
            "versions": {n: v.to_json() for n, v in self.versions.items()},
            "logged": [list(row) for row in self.logged],
            "files": list(self.files),
            "same": [list(group) for group in self.same],
            "before": {n: v.to_json() for n, v in self.before.items()},
            "ambient": list(self.ambient),
            "drawn": dict(self.drawn),
            "rerun": self.rerun,
            "ambient_after": dict(self.ambient_after),
            "inplace": list(self.inplace),
            "touched": dict(self.touched),
            "wrote": list(self.wrote),
        }
        return json.dumps(data, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, key: str, snapshot_id: str | None, payload: bytes) -> CacheEntry:
        data = json.loads(payload)
        return cls(
            key=CellKey(key),
            inputs=KeyInputs.from_json(data["inputs"]),
            snapshot_id=snapshot_id,
            written=tuple(data["written"]),
            mutated=tuple(data["mutated"]),
            deleted=tuple(data["deleted"]),
            unserializable=dict(data["unserializable"]),
            outputs=tuple(data["outputs"]),
            seconds=float(data["seconds"]),
            versions={n: Version.from_json(v) for n, v in data.get("versions", {}).items()},
            logged=tuple(data.get("logged", ())),
            files=tuple(data.get("files", ())),
            same=tuple(tuple(group) for group in data.get("same", ())),
            before={n: Version.from_json(v) for n, v in data.get("before", {}).items()},
            ambient=tuple(data.get("ambient", ())),
            drawn=dict(data.get("drawn", {})),
            rerun=str(data.get("rerun", "")),
            ambient_after=dict(data.get("ambient_after", {})),
            inplace=tuple(data.get("inplace", ())),
            touched=dict(data.get("touched", {})),
            wrote=tuple(data.get("wrote", ())),
        )
