"""nbcellar gives Jupyter notebooks a memory.

The top-level package stays light: importing it must not pull in IPython, pandas or
jupyter_client, so that ``import nbcellar`` and ``nbcellar --help`` are fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "load_ipython_extension",
    "log",
    "logged",
    "runs",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    """``nbcellar.runs``: the runs package, which is also the function returning a RunSet
    (``nbcellar.runs(notebook=..., model="rf")``); imported when first asked for."""
    if name == "runs":
        import importlib

        return importlib.import_module("nbcellar.runs")
    raise AttributeError(f"module 'nbcellar' has no attribute {name!r}")


def log(**values: Any) -> None:
    """Log values with the run: ``nbcellar.log(mse=0.12, confusion=fig)``. A name logged
    again makes a history. ``nbcellar run`` keeps them in the run's record."""
    from nbcellar.logbook import BOOK

    BOOK.log(values)


def logged() -> dict[str, list[Any]]:
    """What this kernel logged so far: each name's values, in order."""
    from nbcellar.logbook import BOOK

    return BOOK.histories()


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext nbcellar``: cache every following cell of this kernel."""
    from nbcellar.kernel.extension import load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext nbcellar``: run cells normally again."""
    from nbcellar.kernel.extension import unload

    unload(shell)
