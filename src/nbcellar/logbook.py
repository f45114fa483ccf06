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
    """Entries as JSON rows: ``[name, {"value": v}]``, or ``[name, {"type": T, "index": i,
    "shown": S}]`` for the i-th value kept elsewhere (see :func:`rest`), S its display form
    (see :func:`display_form`)."""
    rows: list[list[Any]] = []
    kept = 0
    for name, value in entries:
        if plain(value):
            rows.append([name, {"value": value}])
        else:
            row = {"type": type(value).__qualname__, "index": kept, "shown": display_form(value)}
            rows.append([name, row])
            kept += 1
    return rows


_TEXT_LIMIT = 4000
_HTML_LIMIT = 200_000


def display_form(value: Any) -> dict[str, Any]:
    """How comparisons and reports show a value JSON cannot hold, made while it is alive (in
    the kernel that logged it), so that reading a run never unpickles what it only displays:
    ``{"number": x}`` (numpy numbers), ``{"dict": {...}}`` (keys as text, values plain or their
    display text), ``{"frame": {"html", "text"}}`` (DataFrames and Series as pandas shows
    them), ``{"png": base64}`` (figures, images), else ``{"text": repr}``."""
    from nbcellar.runs.comparison import as_image, is_image, number

    try:
        if (n := number(value)) is not None:
            return {"number": n}
        if isinstance(value, Mapping):
            return {"dict": {str(k): _display_item(v) for k, v in value.items()}}
        if type(value).__name__ in ("DataFrame", "Series") and hasattr(value, "to_html"):
            html = value.to_html(max_rows=30, max_cols=12)
            text = value.to_string(max_rows=60, max_cols=20)
            if len(html) <= _HTML_LIMIT:
                return {"frame": {"html": html, "text": _cut(text)}}
            return {"text": _cut(text)}
        if is_image(value) and (image := as_image(value)) is not None:
            import base64

            return {"png": base64.b64encode(image.png).decode("ascii")}
        return {"text": _cut(repr(value))}
    except Exception as error:  # a value whose display fails still logs (as the error says)
        return {"text": f"<{type(value).__qualname__}: not shown ({type(error).__name__})>"}


def _display_item(value: Any) -> Any:
    from nbcellar.runs.comparison import number

    if plain(value):
        return value if not isinstance(value, str) else _cut(value)
    n = number(value)
    return n if n is not None else _cut(repr(value))


def _cut(text: str) -> str:
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


def rest(entries: list[tuple[str, Any]]) -> list[Any]:
    """The logged values JSON cannot hold, in order (what ``"index"`` counts)."""
    return [value for _, value in entries if not plain(value)]


def expand(rows: list[list[Any]], kept: list[Any]) -> list[tuple[str, Any]]:
    """Entries back from their summary and the values kept elsewhere."""
    found: list[tuple[str, Any]] = []
    for name, cell in rows:
        found.append((name, cell["value"] if "value" in cell else kept[cell["index"]]))
    return found
