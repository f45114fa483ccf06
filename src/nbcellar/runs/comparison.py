"""One value compared across runs, shown the way its kind reads best.

Numbers and short strings: a table with the best value highlighted (lowest for names like loss,
error, mse or time, highest otherwise). Dicts: a key x run table, best of each numeric row
highlighted. DataFrames, images, figures and HTML: side by side, each captioned with its run.
A value logged more than once (a metric history) also gets a line chart, one line per run.
Only the parameters that differ between the runs are shown. ``_repr_html_`` renders it in a
notebook (and in ``nbcellar report``); ``repr`` in a terminal.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, Literal, Protocol

from nbcellar.runs.outputs import Html, Image, Table

Kind = Literal["scalar", "dict", "frame", "image", "html", "other", "missing"]
_LOWER_IS_BETTER = ("loss", "err", "mse", "mae", "rmse", "time", "seconds", "cost", "regret")
BEST_STYLE = "font-weight:bold;background-color:#d9f2d9"
_ROW = "display:flex;flex-wrap:wrap;align-items:flex-start"
_FIGURE = "margin:0 12px 12px 0;flex:0 1 auto"


class RunData(Protocol):
    """A run as comparisons see it: a recorded run or a collected notebook."""

    @property
    def id(self) -> str: ...

    @property
    def params(self) -> Mapping[str, Any]: ...

    @property
    def values(self) -> Mapping[str, Any]:
        """The last value of each key, where it is plain (numbers, strings)."""
        ...

    def names(self) -> list[str]:
        """The logged names and output tags of this run."""
        ...

    def history(self, key: str) -> list[Any]:
        """Every value logged under ``key`` in order (a tagged output: one value)."""
        ...


def lower_is_better(name: str) -> bool:
    """Losses, errors and times are best low; anything else (accuracy, scores) best high."""
    lowered = name.lower()
    return any(word in lowered for word in _LOWER_IS_BETTER)


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            import numpy as np
        except ImportError:
            return None
        if not isinstance(value, np.integer | np.floating):
            return None
    result = float(value)
    return result if math.isfinite(result) else None


def best_rows(values: Sequence[Any], name: str) -> set[int]:
    """Indexes of the runs with the best value of ``name`` (ties all count)."""
    numbers = [(i, n) for i, v in enumerate(values) if (n := number(v)) is not None]
    if len({n for _, n in numbers}) < 2:  # nothing to choose between
        return set()
    target = (min if lower_is_better(name) else max)(n for _, n in numbers)
    return {i for i, n in numbers if n == target}


def varied_params(runs: Sequence[RunData]) -> list[str]:
    names = list(dict.fromkeys(p for r in runs for p in r.params))
    return [p for p in names if len({repr(r.params.get(p)) for r in runs}) > 1]


def as_image(value: Any) -> Image | None:
    """A PNG of an image or a figure (matplotlib's, or anything with ``_repr_png_``)."""
    if isinstance(value, Image):
        return value
    if hasattr(value, "savefig"):
        buffer = io.BytesIO()
        value.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
        return Image(buffer.getvalue())
    png = getattr(value, "_repr_png_", None)
    if callable(png) and not isinstance(value, type):
        data = png()
        return Image(data) if isinstance(data, bytes) else None
    return None


def is_image(value: Any) -> bool:
    """Whether :func:`as_image` can draw ``value`` (without drawing it)."""
    if isinstance(value, Image) or hasattr(value, "savefig"):
        return True
    return callable(getattr(value, "_repr_png_", None)) and not isinstance(value, type)


def kind_of(values: Sequence[Any]) -> Kind:
    present = [v for v in values if v is not None]
    if not present:
        return "missing"
    if all(number(v) is not None or isinstance(v, str | bool) for v in present):
        return "scalar"
    if all(isinstance(v, Mapping) for v in present):
        return "dict"
    if all(type(v).__name__ in ("DataFrame", "Series") or isinstance(v, Table) for v in present):
        return "frame"
    if all(isinstance(v, Html) for v in present):
        return "html"
    if all(is_image(v) for v in present):
        return "image"
    return "other"


def _text(value: Any) -> str:
    if value is None:
        return ""
    n = number(value)
    return f"{n:.6g}" if n is not None and not isinstance(value, int) else str(value)


class Comparison:
    """``key`` across ``runs``: see the module's docstring."""

    def __init__(self, key: str, runs: Sequence[RunData]) -> None:
        self.key = key
        self.runs = list(runs)
        self.varied = varied_params(self.runs)
        self.histories = [r.history(key) for r in self.runs]
        self.values = [h[-1] if h else None for h in self.histories]
        self.kind: Kind = kind_of(self.values)
        if self.kind == "image":
            self.values = [None if v is None else as_image(v) for v in self.values]
        self.lower_is_better = lower_is_better(key)
        self.best = best_rows(self.values, key) if self.kind == "scalar" else set()

    # -- labels ----------------------------------------------------------------------------

    def label(self, position: int) -> str:
        run = self.runs[position]
        shown = ", ".join(f"{p}={run.params.get(p)!r}" for p in self.varied)
        return shown or run.id

    @property
    def has_history(self) -> bool:
        return any(len(h) > 1 and all(number(v) is not None for v in h) for h in self.histories)

    # -- as data ----------------------------------------------------------------------------

    def to_frame(self) -> Any:
        """Scalars: one row per run (varied params, value); dicts: one row per key, a column
        per run; DataFrames: the frames side by side under their run's label."""
        import pandas as pd

        ids = pd.Index([r.id for r in self.runs], name="run")
        if self.kind == "dict":
            columns = {self.label(i): dict(v or {}) for i, v in enumerate(self.values)}
            return pd.DataFrame(columns)
        if self.kind == "frame":
            frames = {self.label(i): v for i, v in enumerate(self.values) if v is not None}
            return pd.concat(frames, axis=1)
        return pd.DataFrame(
            {p: [r.params.get(p) for r in self.runs] for p in self.varied}
            | {self.key: self.values},
            index=ids,
        )

    def dict_best(self) -> dict[str, set[int]]:
        keys = list(dict.fromkeys(k for v in self.values if v for k in v))
        return {
            k: best_rows([None if v is None else v.get(k) for v in self.values], f"{self.key} {k}")
            for k in keys
        }

    # -- in a terminal ----------------------------------------------------------------------

    def __repr__(self) -> str:
        which = "lowest" if self.lower_is_better else "highest"
        if self.kind == "scalar" or self.kind == "missing":
            frame = self.to_frame()
            frame["best"] = ["*" if i in self.best else "" for i in range(len(self.runs))]
            return f"{frame.to_string()}\n* best {self.key} ({which})"
        if self.kind == "dict":
            frame = self.to_frame().astype(object)
            for key, best in self.dict_best().items():
                for i in range(len(frame.columns)):
                    value = frame.iat[frame.index.get_loc(key), i]
                    mark = " *" if i in best else ""
                    frame.iat[frame.index.get_loc(key), i] = f"{_text(value)}{mark}"
            return f"{self.key}:\n{frame.to_string()}\n* best of each row"
        parts = [f"{self.key}:"]
        for i, value in enumerate(self.values):
            parts.append(f"--- {self.label(i)} ({self.runs[i].id})")
            if value is None:
                parts.append("(nothing)")
            elif self.kind == "frame":
                parts.append(value.to_string())
            else:
                parts.append(repr(value))
        if self.kind in ("image", "html"):
            parts.append("(shown side by side in a notebook, or with 'nbcellar report')")
        return "\n".join(parts)

    # -- in a notebook or a report ----------------------------------------------------------

    def body_html(self) -> str:
        """The values as HTML, without a title or a chart of their histories: a table
        (scalars, dicts) or the values side by side."""
        if self.kind in ("scalar", "missing"):
            return self._scalar_html()
        if self.kind == "dict":
            return self._dict_html()
        return self._side_by_side_html()

    def _repr_html_(self) -> str:
        title = f"<h3>{escape(self.key)}</h3>"
        body = self.body_html()
        if self.has_history:
            chart = self.history_chart()
            if chart is not None:
                body += f'<img src="{chart.data_uri()}" alt="{escape(self.key)} per step">'
        return title + body

    def _scalar_html(self) -> str:
        columns = ["run", *self.varied, self.key]
        head = "".join(f"<th>{escape(c)}</th>" for c in columns)
        rows = []
        for i, run in enumerate(self.runs):
            cells = [f"<td>{escape(run.id)}</td>"]
            cells += [f"<td>{escape(repr(run.params.get(p)))}</td>" for p in self.varied]
            mark = f' style="{BEST_STYLE}"' if i in self.best else ""
            cells.append(f"<td{mark}>{escape(_text(self.values[i]))}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        which = "lowest" if self.lower_is_better else "highest"
        note = f"<p>best {escape(self.key)} ({which}) highlighted</p>" if self.best else ""
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{note}"

    def _dict_html(self) -> str:
        best = self.dict_best()
        head = "<th></th>" + "".join(
            f"<th>{escape(self.label(i))}</th>" for i in range(len(self.runs))
        )
        rows = []
        for key, winners in best.items():
            cells = [f"<th>{escape(str(key))}</th>"]
            for i, value in enumerate(self.values):
                shown = "" if value is None else _text(value.get(key))
                mark = f' style="{BEST_STYLE}"' if i in winners else ""
                cells.append(f"<td{mark}>{escape(shown)}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

    def _side_by_side_html(self) -> str:
        items = []
        for i, value in enumerate(self.values):
            if value is None:
                inner = "<em>nothing</em>"
            elif isinstance(value, Table):  # HTML read from a run's log: only its table
                inner = table_only(value.html)
            elif self.kind == "frame":
                inner = value.to_html(max_rows=30, max_cols=12)
            elif self.kind == "image":
                inner = f'<img src="{value.data_uri()}" style="max-width:100%">'
            elif self.kind == "html":
                inner = sandboxed(value.html)
            else:
                inner = f"<pre>{escape(repr(value))}</pre>"
            caption = f"<figcaption><b>{escape(self.label(i))}</b></figcaption>"
            items.append(f'<figure style="{_FIGURE}">{caption}{inner}</figure>')
        return f'<div style="{_ROW}">{"".join(items)}</div>'

    def history_chart(self) -> Image | None:
        """The histories as a line chart, one line per run (None without matplotlib)."""
        try:
            from matplotlib.figure import Figure
        except ImportError:
            return None
        figure = Figure(figsize=(6, 3.2))
        axes = figure.add_subplot()
        for i, history in enumerate(self.histories):
            points = [n for v in history if (n := number(v)) is not None]
            if len(points) > 1 and len(points) == len(history):
                axes.plot(range(1, len(points) + 1), points, label=self.label(i))
        axes.set_xlabel("step")
        axes.set_ylabel(self.key)
        if len(self.runs) <= 12:
            axes.legend(fontsize="small")
        return as_image(figure)


def sandboxed(html: str) -> str:
    """A cell's HTML output shown in a frame that runs none of its scripts and reaches nothing
    of the page around it (a report sent to someone runs no code of the notebook's)."""
    return (
        f'<iframe sandbox="" srcdoc="{escape(html, quote=True)}" '
        'style="width:100%;min-height:12em;border:0" loading="lazy"></iframe>'
    )


_TABLE_TAGS = {"table", "thead", "tbody", "tfoot", "tr", "th", "td"}
_TABLE_ATTRIBUTES = {"border", "class", "colspan", "rowspan", "halign", "valign"}


def table_only(html: str) -> str:
    """A table's HTML (as pandas writes it) rebuilt from its table tags and their text alone:
    any other tag, attribute or script is left out, so HTML read from a store that another
    hand wrote shows as a table and runs nothing."""
    from html.parser import HTMLParser

    parts: list[str] = []
    hidden = [0]  # inside a script or style

    class Rebuild(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("script", "style"):
                hidden[0] += 1
            elif tag in _TABLE_TAGS:
                kept = "".join(
                    f' {name}="{escape(value or "", quote=True)}"'
                    for name, value in attrs
                    if name in _TABLE_ATTRIBUTES
                )
                parts.append(f"<{tag}{kept}>")

        def handle_endtag(self, tag: str) -> None:
            if tag in ("script", "style"):
                hidden[0] = max(0, hidden[0] - 1)
            elif tag in _TABLE_TAGS:
                parts.append(f"</{tag}>")

        def handle_data(self, data: str) -> None:
            if not hidden[0]:
                parts.append(escape(data))

    parser = Rebuild(convert_charrefs=True)
    parser.feed(html)
    parser.close()
    return "".join(parts)
