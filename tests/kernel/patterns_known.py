"""What goes wrong today, pattern by pattern and way by way, as a user sees it.

Each entry makes that test an expected failure (strict): a fix turns it into XPASS, which fails
the run until its line here is removed. Keys are a way or a tuple of ways (see
tests/patterns_support.py ``WAYS``); "status" means ``nbcellar status`` disagrees with the run.
"""

from __future__ import annotations

from collections.abc import Mapping

from tests.patterns_support import Way

RESTART = ("rerun", "interactive")  # after a restart, in ``nbcellar run`` and in Jupyter
EDIT = ("edit", "live_edit")  # after the edit, in ``nbcellar run`` and in the live kernel

KNOWN: Mapping[str, Mapping[Way | tuple[Way, ...], str]] = {}


def known_failure(name: str, way: Way) -> str | None:
    """What goes wrong with pattern ``name`` in ``way`` today, if anything."""
    for ways, reason in KNOWN.get(name, {}).items():
        if way == ways or (isinstance(ways, tuple) and way in ways):
            return reason
    return None
