"""Executed notebooks as HTML for the dashboard (nbconvert's exporter, its basic template)."""

from __future__ import annotations

from pathlib import Path


def notebook_as_html(path: Path) -> str:
    """The notebook at ``path`` as one HTML page: code, text and images as they were shown.
    (The page is served into a sandboxed frame: its scripts and its HTML outputs run there
    with nothing allowed.)"""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")  # type: ignore[no-untyped-call]
    exporter.embed_images = True
    body, _ = exporter.from_notebook_node(nbformat.read(path, as_version=4))
    return body
