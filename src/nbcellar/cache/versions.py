"""Versions: what a cell key knows of each value it reads.

A value's version says where it came from, so that two keys are equal only when the cells
read the same values. It is one of:

- ``absent``: the name is not bound;
- ``content``: a fingerprint of the value (its pickled bytes), when nbcellar did not see it
  being made, or a value stored alone by a cached cell;
- ``stored``: the content hash of the value a cached cell stored, with what it refers to
  instead of containing (the source of project code, other variables by name and version);
- ``cell``: the key of the cell run that made a value it could not store;
- ``object``: an unpicklable value of unknown origin, known only by its identity;
- ``unknown``: never equal to any other (a version nbcellar lost track of);
- ``predicted``: in a simulated run (``nbcellar status``), a value a cell that would run makes;
- ``imported``: what a top-level import binds (``from m import a``), with the version of the
  module: the same wherever the cell runs, and known without running it.

Versions travel in keys and entries as small JSON lists, never as text parsed back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NewType

Fingerprint = NewType("Fingerprint", str)
"""A content hash of a value: equal bytes (and buffers) pickled, equal fingerprint."""

VersionKind = Literal[
    "absent", "content", "stored", "cell", "object", "unknown", "predicted", "imported"
]
_KINDS: frozenset[str] = frozenset(
    {"absent", "content", "stored", "cell", "object", "unknown", "predicted", "imported"}
)


@dataclass(frozen=True, order=True)
class Version:
    kind: VersionKind
    token: str = ""
    # For ``stored`` values: the project module sources and the variables (name@version) the
    # value refers to instead of containing.
    refers: tuple[str, ...] = ()

    @classmethod
    def absent(cls) -> Version:
        return cls("absent")

    @classmethod
    def content(cls, fingerprint: Fingerprint) -> Version:
        return cls("content", fingerprint)

    @classmethod
    def stored(cls, value_key: str, refers: Sequence[str] = ()) -> Version:
        return cls("stored", value_key, tuple(refers))

    @classmethod
    def cell(cls, key: str) -> Version:
        return cls("cell", key)

    @classmethod
    def identity(cls, value: Any) -> Version:
        return cls("object", f"{type(value).__qualname__}:{id(value):x}")

    @classmethod
    def unknown(cls) -> Version:
        return cls("unknown")

    @classmethod
    def predicted(cls, token: str) -> Version:
        return cls("predicted", token)

    @classmethod
    def imported(cls, what: str, module_versions: Sequence[str]) -> Version:
        return cls("imported", what, tuple(module_versions))

    @property
    def fingerprint(self) -> Fingerprint | None:
        """The fingerprint a value of this version has, where the version says (a value
        stored alone, referring to nothing, is its own fingerprint)."""
        if self.kind == "content" or (self.kind == "stored" and not self.refers):
            return Fingerprint(self.token)
        return None

    @property
    def known(self) -> bool:
        """False for a version that must never match another (``unknown``)."""
        return self.kind != "unknown"

    def to_json(self) -> list[Any]:
        if self.refers:
            return [self.kind, self.token, list(self.refers)]
        return [self.kind, self.token] if self.token else [self.kind]

    @classmethod
    def from_json(cls, data: Any) -> Version:
        """A version as :meth:`to_json` wrote it; ``unknown`` for anything else (an entry
        from an older nbcellar), which matches nothing."""
        if not isinstance(data, list) or not data or data[0] not in _KINDS:
            return cls.unknown()
        token = str(data[1]) if len(data) > 1 else ""
        refers = tuple(str(r) for r in data[2]) if len(data) > 2 else ()
        return cls(data[0], token, refers)

    def __str__(self) -> str:
        """For people: ``content 1f3a…``."""
        return f"{self.kind} {self.token[:12]}".rstrip()


ABSENT = Version.absent()
UNKNOWN = Version.unknown()
