"""What tagged cells of an executed notebook showed, as values to compare.

A cell tagged ``accuracy`` whose output is ``0.93`` gives the number 0.93; one that showed a
plot gives an :class:`Image`; a DataFrame's HTML table stays :class:`Html` (or becomes a
DataFrame where pandas can read HTML); a printed dict gives the dict. Tags that steer
execution (``parameters``, ``injected-parameters``, nbcellar's own directives) are not
outputs.
"""

from __future__ import annotations

import ast
import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nbcellar.notebook.model import Notebook

STEERING_TAGS = ("parameters", "injected-parameters", "nocache", "refresh", "skip-execution")


@dataclass(frozen=True)
class Image:
    """A PNG image: shown inline in notebooks and reports."""

    png: bytes

    def _repr_png_(self) -> bytes:
        return self.png

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")

    def size(self) -> tuple[int, int] | None:
        """(width, height) read from the PNG header."""
        if self.png[:8] != b"\x89PNG\r\n\x1a\n" or len(self.png) < 24:
            return None
        return int.from_bytes(self.png[16:20], "big"), int.from_bytes(self.png[20:24], "big")

    def __repr__(self) -> str:
        size = self.size()
        return f"<image {size[0]}x{size[1]}>" if size else "<image>"


@dataclass(frozen=True)
class Html:
    """HTML a cell displayed (a table, a styled frame)."""

    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return "<html>"


@dataclass(frozen=True)
class Table:
    """A DataFrame or Series as the kernel that logged it showed it (HTML and text), read from
    a run's log without unpickling the frame."""

    html: str
    text: str

    def to_html(self, **_: Any) -> str:
        return self.html

    def to_string(self, **_: Any) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Shown:
    """Any other logged value, as its ``repr`` was when it was logged."""

    text: str

    def __repr__(self) -> str:
        return self.text


def from_display_form(form: Mapping[str, Any]) -> Any:
    """The value to compare or report from a display form (see nbcellar.logbook.display_form)."""
    if "number" in form:
        return float(form["number"])
    if "dict" in form:
        return dict(form["dict"])
    if "frame" in form:
        return Table(str(form["frame"]["html"]), str(form["frame"]["text"]))
    if "png" in form:
        return Image(base64.b64decode(form["png"]))
    return Shown(str(form.get("text", "")))


def output_tags(tags: Sequence[str]) -> list[str]:
    return [t for t in tags if t not in STEERING_TAGS and ":" not in t]


def tagged_outputs(nb: Notebook) -> dict[str, list[Mapping[str, Any]]]:
    """Tag -> the outputs of the (last) code cell carrying it."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for cell in nb.code_cells:
        for tag in output_tags(cell.tags):
            found[tag] = list(cell.outputs)
    return found


def _text(data: Any) -> str:
    return "".join(data) if isinstance(data, list) else str(data)


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text.rstrip("\n")


def value_of(outputs: Sequence[Mapping[str, Any]]) -> Any:
    """The value a cell's outputs show: its last image, table, result or printed text."""
    chosen: Any = None
    printed: list[str] = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream" and output.get("name") == "stdout":
            printed.append(_text(output.get("text", "")))
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            if "image/png" in data:
                chosen = Image(base64.b64decode(_text(data["image/png"])))
            elif "text/html" in data:
                chosen = _frame_or_html(_text(data["text/html"]))
            elif "text/plain" in data:
                chosen = _literal(_text(data["text/plain"]))
    if chosen is not None:
        return chosen
    if printed:
        return _literal("".join(printed))
    return None


def _frame_or_html(html: str) -> Any:
    """A DataFrame where pandas can read the table (it needs lxml or bs4), else the HTML."""
    if "<table" not in html:
        return Html(html)
    try:
        from io import StringIO

        import pandas as pd

        tables = pd.read_html(StringIO(html), index_col=0)
    except Exception:  # no HTML parser installed, or not a plain table
        return Html(html)
    return tables[0] if len(tables) == 1 else Html(html)


def summary(outputs: Sequence[Mapping[str, Any]]) -> Any:
    """What a run record keeps of a tagged cell's outputs: a plain value, or its kind."""
    value = value_of(outputs)
    if value is None or isinstance(value, bool | int | float | str):
        return value if not isinstance(value, str) or len(value) <= 200 else value[:199] + "…"
    if isinstance(value, Image):
        return {"type": "image"}
    if isinstance(value, Html):
        return {"type": "html"}
    return {"type": type(value).__name__}
