"""``nbcellar build --plot dag.html``: the pipeline's tasks and what they need, as an SVG
(bare, or in an HTML page), each task coloured by its state as ``--explain`` finds it (up to
date, would run, may run) or by how a build ended. Laid out in columns: a task one column right
of the rightmost task it needs. No graph library needed: nothing to install."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from nbcellar.pipeline.spec import Pipeline

COLOURS = {
    "up to date": "#2e7d32",
    "ran": "#1565c0",
    "would run": "#ef6c00",
    "may run": "#f9a825",
    "failed": "#c62828",
    "skipped": "#757575",
    "cancelled": "#757575",
}
WIDTH, HEIGHT, GAP_X, GAP_Y, MARGIN = 200, 44, 70, 22, 20


def dag_svg(pipeline: Pipeline, states: Mapping[str, Any] | None = None) -> str:
    """The SVG of ``pipeline``; ``states``: task name -> an outcome with ``status`` and
    ``why`` (a Build's outcomes), shown as colour and tooltip."""
    states = states or {}
    column: dict[str, int] = {}
    for name in pipeline.tasks:  # (in order: what a task needs is placed before it)
        column[name] = 1 + max((column[u] for u in pipeline.needs(name)), default=-1)
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for name, col in column.items():
        row = rows.get(col, 0)
        rows[col] = row + 1
        place[name] = (MARGIN + col * (WIDTH + GAP_X), MARGIN + row * (HEIGHT + GAP_Y))
    width = MARGIN * 2 + (max(column.values(), default=0) + 1) * (WIDTH + GAP_X) - GAP_X
    height = MARGIN * 2 + max(rows.values(), default=1) * (HEIGHT + GAP_Y) - GAP_Y
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/>'
             "</marker></defs>"]  # fmt: skip
    for name in pipeline.tasks:
        x2, y2 = place[name]
        for upstream in pipeline.needs(name):
            x1, y1 = place[upstream]
            a, b = (x1 + WIDTH, y1 + HEIGHT / 2), (x2, y2 + HEIGHT / 2)
            middle = (a[0] + b[0]) / 2
            curve = f"M{a[0]},{a[1]} C{middle},{a[1]} {middle},{b[1]} {b[0]},{b[1]}"
            parts.append(f'<path d="{curve}" fill="none" stroke="#555" '
                         'marker-end="url(#arrow)"/>')  # fmt: skip
    for name, (x, y) in place.items():
        outcome = states.get(name)
        status = getattr(outcome, "status", "") if outcome is not None else ""
        why = getattr(outcome, "why", "") if outcome is not None else ""
        colour = COLOURS.get(status, "#9e9e9e")
        label = name if len(name) <= 26 else name[:25] + "…"
        tip = escape(f"{name}: {status}" + (f" ({why})" if why else ""))
        parts.append(f'<g><title>{tip}</title><rect x="{x}" y="{y}" width="{WIDTH}" '
                     f'height="{HEIGHT}" rx="6" fill="white" stroke="{colour}" '
                     f'stroke-width="3"/><text x="{x + 10}" y="{y + 18}">{escape(label)}</text>'
                     f'<text x="{x + 10}" y="{y + 35}" fill="{colour}" font-size="11">'
                     f"{escape(status)}</text></g>")  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts)


def write_plot(path: Path, pipeline: Pipeline, states: Mapping[str, Any] | None = None) -> None:
    """``path``: ``.svg`` for the bare SVG, else an HTML page holding it."""
    from nbcellar.errors import NbcellarError

    svg = dag_svg(pipeline, states)
    text = svg + "\n"
    if path.suffix.lower() != ".svg":
        title = escape(f"pipeline of {pipeline.root}")
        text = (f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{title}</title>"
                f"</head><body><h3 style='font-family:sans-serif'>{title}</h3>\n{svg}\n"
                "</body></html>\n")  # fmt: skip
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise NbcellarError(f"cannot draw the pipeline in {path}: {why}; give a file in a "
                            "folder that exists and can be written") from None  # fmt: skip
