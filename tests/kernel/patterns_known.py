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

KNOWN: Mapping[str, Mapping[Way | tuple[Way, ...], str]] = {
    "lru_cache_function": {
        RESTART: "the lru_cache function cannot be restored: a CacheEntryWarning, its cell runs",
        "live_edit": "after the edit the cache hits differ: the function was made anew",
    },
    "getstate_drops_a_cache": {
        RESTART: "after a restart m._cache is empty (its __getstate__ dropped it)",
    },
    "two_names_share_an_unnamed_object": {
        RESTART: "after a restart a['x'] and b['y'] are two lists: b misses the appended 3",
    },
    "method_appends_to_a_notebook_list": {
        ("rerun", "edit", "interactive", "live_edit"): (
            "after a restart registry is empty: self.registry.append is lost"
        ),
    },
    "thread_in_a_replayed_cell": {
        RESTART: "after a restart the thread waits forever and `results` stays empty",
    },
    "output_of_c_code": {
        ("rerun", "served", "edit", "interactive"): (
            "the ctypes library cannot be restored: a CacheEntryWarning, its cell runs"
        ),
        "status": "status says the ctypes cells are restored; the run runs them",
    },
    "cached_property": {
        RESTART: "after a restart the cached_property value is no longer on the instance",
    },
    "defaultdict_factory_reads_a_global": {
        "edit": "after START changes, counts is restored built with the old default",
    },
    "sqlite_in_memory_database": {
        ("rerun", "edit", "interactive", "live_edit"): (
            "after a restart the in-memory database has no table t (OperationalError)"
        ),
    },
}


def known_failure(name: str, way: Way) -> str | None:
    """What goes wrong with pattern ``name`` in ``way`` today, if anything."""
    for ways, reason in KNOWN.get(name, {}).items():
        if way == ways or (isinstance(ways, tuple) and way in ways):
            return reason
    return None
