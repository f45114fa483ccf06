"""``nbcellar.log(name=value, ...)``: values a notebook reports, kept with its run.

Each call appends to this process's log book: a name logged once is a value, logged again a
history. The cell cache listens: the values a cell logs are part of what the cell did, so a cell
restored from the cache logs them again without running. ``nbcellar run`` saves the log book of
each run's kernel with the run's record. Any picklable value can be logged (numbers, dicts,
data frames, figures); plain values are kept as JSON, others in the store.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

Listener = Callable[[str, Any], None]


def plain(value: Any) -> bool:
    """Whether JSON keeps the value as it is (numbers, strings, booleans, None, and lists and
    string-keyed dicts of those)."""
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(plain(v) for v in value)
    if kind is dict:
        return all(type(k) is str and plain(v) for k, v in value.items())
    return False


class LogBook:
    def __init__(self) -> None:
        self.entries: list[tuple[str, Any]] = []
        self.listeners: list[Listener] = []

    def log(self, values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            self.entries.append((name, value))
            for listener in list(self.listeners):
                listener(name, value)

    def replay(self, entries: list[tuple[str, Any]]) -> None:
        """Entries a restored cell logged when it ran (listeners are not told: not new)."""
        self.entries.extend(entries)

    def values(self) -> dict[str, Any]:
        """The last value logged under each name."""
        return dict(self.entries)

    def histories(self) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        for name, value in self.entries:
            found.setdefault(name, []).append(value)
        return found

    def clear(self) -> None:
        self.entries.clear()


BOOK = LogBook()


RESERVED = "nbcellar:logged"
"""Where a cache entry's snapshot keeps the logged values JSON cannot hold."""


def summarize(entries: list[tuple[str, Any]]) -> list[list[Any]]:
    """Entries as JSON rows: ``[name, {"value": v}]``, or ``[name, {"type": T, "index": i}]``
    for the i-th value kept elsewhere (see :func:`rest`)."""
    rows: list[list[Any]] = []
    kept = 0
    for name, value in entries:
        if plain(value):
            rows.append([name, {"value": value}])
        else:
            rows.append([name, {"type": type(value).__qualname__, "index": kept}])
            kept += 1
    return rows


def rest(entries: list[tuple[str, Any]]) -> list[Any]:
    """The logged values JSON cannot hold, in order (what ``"index"`` counts)."""
    return [value for _, value in entries if not plain(value)]


def expand(rows: list[list[Any]], kept: list[Any]) -> list[tuple[str, Any]]:
    """Entries back from their summary and the values kept elsewhere."""
    found: list[tuple[str, Any]] = []
    for name, cell in rows:
        found.append((name, cell["value"] if "value" in cell else kept[cell["index"]]))
    return found
