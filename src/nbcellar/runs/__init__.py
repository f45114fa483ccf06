"""Orchestration: executing notebooks, parameters and grids, run records and their queries.

The package is also callable: ``nbcellar.runs(...)`` returns the recorded runs as a RunSet
(see :func:`nbcellar.runs.runset.runs`).
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from nbcellar.runs.runset import runs

        return runs(*args, **kwargs)


def attach(launch_id: str, store: Any = None) -> Any:
    """A launch of ``nbcellar.run(..., wait=False)`` found again by its id, from any process
    (see nbcellar.runs.api.attach)."""
    from nbcellar.runs.api import attach as attach_launch

    return attach_launch(launch_id, store)


sys.modules[__name__].__class__ = _CallablePackage
