"""nbcellar gives Jupyter notebooks a memory.

The top-level package stays light: importing it must not pull in IPython, pandas or
jupyter_client, so that ``import nbcellar`` and ``nbcellar --help`` are fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext nbcellar``: cache every following cell of this kernel."""
    from nbcellar.kernel.extension import load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext nbcellar``: run cells normally again."""
    from nbcellar.kernel.extension import unload

    unload(shell)
