"""The example project that `nbcellar demo` copies and runs."""

from __future__ import annotations

from pathlib import Path


def project_folder() -> Path:
    """The folder of the bundled project: the notebook, its module, the grid and a README."""
    return Path(__file__).parent / "project"
