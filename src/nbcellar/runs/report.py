"""``nbcellar report``: runs compared in one self-contained HTML file.

The file holds everything (styles, tables, images and charts as inline PNG data), so it can be
mailed or attached to a ticket: a table of the runs with the parameters that differ and their
numbers (best of each column highlighted), then each other logged value or tagged output side
by side (dicts as tables, DataFrames, images, figures), and metric histories as line charts.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

from nbcellar.runs.comparison import (
    BEST_STYLE,
    Comparison,
    best_rows,
    lower_is_better,
    number,
    varied_params,
)

_STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
figcaption { font-size: 0.85em; margin-bottom: 4px; }
.note { color: #666; font-size: 0.85em; }
"""


def _scalar_keys(runset: Any) -> list[str]:
    keys = []
    for key in runset.names():
        values = [run.values.get(key) for run in runset]
        present = [v for v in values if v is not None]
        if present and all(number(v) is not None or isinstance(v, str) for v in present):
            keys.append(key)
    return keys


def _shown(value: Any) -> str:
    n = number(value)
    return str(value) if n is None or isinstance(value, int) else f"{n:.6g}"


def runs_table_html(runset: Any) -> str:
    """One row per run: id, status, the parameters that differ, the plain values logged or
    shown; the best of each numeric column highlighted."""
    runs = list(runset)
    varied = varied_params(runs)
    keys = _scalar_keys(runset)
    with_status = any(hasattr(r, "status") for r in runs)
    best = {k: best_rows([r.values.get(k) for r in runs], k) for k in keys}
    columns = ["run", *(["status"] if with_status else []), *varied, *keys]
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    rows = []
    for i, run in enumerate(runs):
        cells = [f"<td>{escape(run.id)}</td>"]
        if with_status:
            cells.append(f"<td>{escape(str(getattr(run, 'status', '')))}</td>")
        cells += [f"<td>{escape(repr(run.params.get(p)))}</td>" for p in varied]
        for key in keys:
            value = run.values.get(key)
            shown = "" if value is None else _shown(value)
            mark = f' style="{BEST_STYLE}"' if i in best[key] else ""
            cells.append(f"<td{mark}>{escape(shown)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def report_html(runset: Any, keys: list[str] | None = None, title: str | None = None) -> str:
    """The whole report as one HTML document."""
    runs = list(runset)
    title = title or f"{len(runs)} runs compared"
    scalars = set(_scalar_keys(runset))
    sections = []
    for key in keys or runset.names():
        comparison = Comparison(key, runs)
        if key in scalars and not comparison.has_history and keys is None:
            continue  # already a column of the runs table
        sections.append(f"<section>{comparison._repr_html_()}</section>")
    when = time.strftime("%Y-%m-%d %H:%M")
    lower = [k for k in scalars if lower_is_better(k)]
    note = (
        "Best of each column highlighted: lowest for "
        + (", ".join(escape(k) for k in sorted(lower)) or "none")
        + "; highest for the others."
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><p class='note'>nbcellar report, {when}</p>"
        f"<h2>Runs</h2>{runs_table_html(runset)}<p class='note'>{note}</p>"
        + "".join(sections)
        + "</body></html>"
    )
