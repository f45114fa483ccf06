"""nbcellar gives Jupyter notebooks a memory.

The top-level package stays light: importing it must not pull in IPython, pandas or
jupyter_client, so that ``import nbcellar`` and ``nbcellar --help`` are fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
