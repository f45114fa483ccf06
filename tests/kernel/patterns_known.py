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
    "sklearn_fit_returns_self": {
        "status": (
            "after the data edit status says `model = LinearRegression()` runs; it is restored"
        ),
    },
    "autoreload_after_module_edit": {
        "live_edit": (
            "with %autoreload 2, the cells using tools after its edit are restored stale: 1, not 2"
        ),
    },
    "logging_handler_added": {
        "status": "after the edit status says the second logging cell runs; the run restores it",
        "live_edit": "after a restart the logger has no handler: `records` stays empty",
    },
    "inline_backend_config": {
        "edit": "after figure_formats becomes ['png'], the figure is restored as SVG",
    },
    "project_module_flag_set": {
        RESTART: "after a restart config.DEBUG is back to False",
        "edit": "after config.DEBUG = None, mode is restored as 'debug'",
    },
    "project_module_keeps_a_notebook_object": {
        RESTART: "after a restart items is [0] and tracker.WATCHED is not the notebook's list",
        "status": (
            "status says the cell after the edit is restored; the kernel runs it, keyed on the "
            "project module's globals as the run leaves them"
        ),
    },
    "error_after_a_partial_assignment": {
        "status": "status says the cell after the raising one runs; the run restores it",
    },
    "monkeypatched_library_function": {
        RESTART: "after a restart statistics.mean is the library's own again",
        "live_edit": (
            "re-running the patch cell recurses in Jupyter (RecursionError); with the cache the "
            "patch was lost at the restart"
        ),
    },
    "method_added_to_a_library_class": {
        EDIT: "after describe() is edited, ns.describe() is restored with the old separator",
        "status": "status says the cells after the patch run; the run restores them",
    },
    "builtins_tweaked": {
        RESTART: "after a restart builtins.VERBOSE is not set",
        EDIT: "after VERBOSE = False, flag is restored as True",
    },
    "sys_setrecursionlimit": {
        RESTART: "after a restart the recursion limit is back to 1000",
    },
    "os_umask": {
        RESTART: "after a restart the umask is back to 0o022",
        "edit": "after the umask changes, the file cell is restored with the old mode",
    },
    "locale_setlocale": {
        RESTART: "after a restart the locale is not set again",
    },
    "decimal_context_precision": {
        RESTART: "after a restart the decimal precision is back to 28",
    },
    "module_injected_into_sys_modules": {
        RESTART: "`import fake` cannot be restored: a CacheEntryWarning, its cell runs",
        EDIT: "after fake.VALUE changes, v is restored as 1",
        "status": "status says the `import fake` cell is restored; the run runs it",
    },
    "atexit_handler_registered": {
        RESTART: "after a restart the atexit handler is not registered",
    },
    "file_written_then_read": {
        EDIT: (
            "after seed changes the file is rewritten, but the reading cell is restored with the "
            "old numbers"
        ),
    },
    "data_file_read_without_a_tag": {
        EDIT: "after data.csv changes, the reading cell is restored with the old rows",
    },
    "temporary_directory_object": {
        "status": (
            "status says the cell reading the path is restored; the replayed TemporaryDirectory "
            "cell makes a new path, so the run runs it (nothing but running it can tell)"
        ),
    },
    "weak_value_dictionary": {
        "status": (
            "status says the cells reading node are restored; after the first cell runs again "
            "(reg cannot be stored) node is of a class made anew, whose pickled bytes differ "
            "(cloudpickle's class id), so the run runs them"
        ),
    },
    "importlib_import_module_by_name": {
        "edit": "after tools.py changes, mod.value() is restored with the old result",
    },
    "shell_output_captured": {
        "status": "status says the cell reading the ! output runs; the run restores it",
    },
    "importlib_reload_after_module_edit": {
        "status": (
            "status says the cell after the reload is restored; the kernel runs it (the module's "
            "globals as the reload leaves them are known only by running it)"
        ),
    },
}


def known_failure(name: str, way: Way) -> str | None:
    """What goes wrong with pattern ``name`` in ``way`` today, if anything."""
    for ways, reason in KNOWN.get(name, {}).items():
        if way == ways or (isinstance(ways, tuple) and way in ways):
            return reason
    return None
