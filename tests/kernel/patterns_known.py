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
    # -- silently wrong values
    "list_augmented_then_rebound": {
        RESTART: "after a restart `a += [4]` is restored as before the cell: [1, 2, 3]",
    },
    "dataframe_augmented_in_place": {
        RESTART: "after a restart `df += 1` is restored as before the cell: x is [1, 2, 3]",
    },
    "sklearn_fit_returns_self": {
        RESTART: "after a restart the model of `model = model.fit(X, y)` is unfitted: no coef_",
        "status": "after the data edit status says `model = LinearRegression()` runs; it is "
        "restored",
    },
    "function_changes_and_returns_its_argument": {
        RESTART: "after a restart `df = add_features(df)` has no x2 column (KeyError)",
    },
    "dataclass_instance_repr": {
        (*RESTART, *EDIT): "a restored @dataclass instance fails on repr: NameError: _thread",
    },
    "autoreload_after_module_edit": {
        "live_edit": "with %autoreload 2, the cells using tools after its edit are restored "
        "stale: 1, not 2",
    },
    # -- state outside the notebook's globals
    "sys_path_append_then_import": {
        (*RESTART, "served"): "after a restart sys.path misses 'src': `import tools` fails",
        "live_edit": "tools was never imported from src/ after the restart, so the re-run "
        "imports lib/tools.py (63, not 42)",
    },
    "os_environ_set_then_read": {
        RESTART: "after a restart os.environ['MODE'] is not set (None)",
    },
    "os_chdir_then_relative_read": {
        RESTART: "after a restart the kernel is not in data/ (os.getcwd() is the notebook's)",
        "edit": "after os.chdir('data') becomes 'other', the reading cell is restored with "
        "data/'s values",
        "status": "status says the cells after os.chdir run; the run restores them",
        "live_edit": "in Jupyter os.chdir('other') fails inside data/; with the cache the kernel "
        "was never in data/ after the restart",
    },
    "env_magic_then_read": {
        EDIT: "after %env MODE=slow the cell reading os.environ is restored with 'fast'",
    },
    "cd_magic_then_relative_read": {
        "edit": "after %cd data becomes %cd other, the reading cell is restored with data/'s "
        "values",
        "status": "status says the cells after %cd run; the run restores them",
    },
    "random_seed_then_draws": {
        RESTART: "after a restart the global random state is not where the restored draws left "
        "it: the next random.random() differs",
    },
    "numpy_seed_then_draws": {
        RESTART: "after a restart np.random is not where the restored draws left it: the next "
        "draw differs",
    },
    "numpy_draws_counted_upstream": {
        RESTART: "after a restart np.random is not where the restored draws left it",
        EDIT: "drawing 5 values upstream instead of 2 leaves x restored from the old draws",
        "status": "after the edit status says x's cell runs; the run restores it",
    },
    "logging_basic_config_to_stdout": {
        RESTART: "after a restart logging.basicConfig is not redone: no handler, log lines vanish",
        EDIT: "the later cell's log lines went into the basicConfig cell's record: restored "
        "after the level edit, the cell shows nothing",
        "status": "after the level edit status says the logging cell runs; the run restores it",
    },
    "logging_handler_added": {
        (*RESTART, *EDIT): "after a restart the logger has no handler: `records` stays empty",
        "status": "after the edit status says the second logging cell runs; the run restores it",
    },
    "warnings_filter_ignore": {
        RESTART: "after a restart warnings.filterwarnings('ignore') is not re-applied",
    },
    "warning_shown_once": {
        EDIT: "the restored function's warning points to <dynamic-code>, without its source line",
    },
    "pandas_set_option": {
        RESTART: "after a restart display.max_rows is back to 60: the frame prints all rows",
    },
    "numpy_set_printoptions": {
        RESTART: "after a restart numpy prints 8 digits again",
    },
    "matplotlib_style_use": {
        RESTART: "after a restart plt.style.use('ggplot') is lost: the axes are white",
    },
    "matplotlib_rcparams": {
        RESTART: "after a restart rcParams['lines.linewidth'] is back to 1.5",
        EDIT: "after the linewidth becomes 5, the plotting cell is restored with width 3",
    },
    "inline_backend_config": {
        EDIT: "after figure_formats becomes ['png'], the figure is restored as SVG",
    },
    "project_module_flag_set": {
        RESTART: "after a restart config.DEBUG is back to False",
        EDIT: "after config.DEBUG = None, mode is restored as 'debug'",
    },
    "project_function_appends_to_module_list": {
        RESTART: "after a restart registry.ITEMS is empty",
        EDIT: "after the first registration is edited, the second is restored: ITEMS misses 'b'",
        "status": "after the edit status says the second registration runs; the run restores it",
    },
    "project_module_keeps_a_notebook_object": {
        RESTART: "after a restart items is [0] and tracker.WATCHED is not the notebook's list",
    },
    # -- state inside objects
    "closure_counter": {
        (*RESTART, *EDIT): "the counter closure restarts from 0 after a restore (1, not 4)",
    },
    "mutable_default_as_memo": {
        RESTART: "after a restart fib's memo (its mutable default) is empty",
    },
    "lru_cache_function": {
        (*RESTART, "edit"): "the lru_cache function cannot be restored: a CacheEntryWarning, "
        "its cell runs",
        "live_edit": "after the edit the cache hits differ: the function was made anew",
        "status": "status says the lru_cache cell is restored; the run runs it",
    },
    "class_attribute_through_instance": {
        (*RESTART, *EDIT): "after a restart Widget.n is 0: `type(self).n += 1` is not restored",
    },
    "getstate_drops_a_cache": {
        RESTART: "after a restart m._cache is empty (its __getstate__ dropped it)",
    },
    "weakref_to_a_variable": {
        RESTART: "after a restart ref() no longer points to node",
    },
    "generator_advanced_in_later_cells": {
        RESTART: "after a restart the generator starts again: next(it) gives 0, not 2",
    },
    "two_names_share_an_unnamed_object": {
        RESTART: "after a restart a['x'] and b['y'] are two lists: b misses the appended 3",
    },
    # -- changes through calls the analysis does not see
    "callable_object": {
        (*RESTART, *EDIT): "after a restart acc.total is 0: the calls acc(5), acc(7) are lost",
    },
    "closure_accumulator": {
        (*RESTART, *EDIT): "after a restart the closure's list is empty: acc(5), acc(7) are lost",
    },
    "iterator_consumed_by_for": {
        EDIT: "after the loop edit, `rest = list(it)` is restored from the old loop",
    },
    "iterator_consumed_by_zip": {
        EDIT: "after zipping with 3 values, `left` is restored as ['d'], not []",
    },
    "method_appends_to_a_notebook_list": {
        (*RESTART, *EDIT): "after a restart registry is empty: self.registry.append is lost",
    },
    "class_counter_changed_by_init": {
        (*RESTART, *EDIT): "after a restart Job.counter is 0: `Job.counter += 1` is lost",
    },
    "lambda_passed_to_apply": {
        RESTART: "after a restart `seen` is empty: the lambda's appends are lost",
    },
    # -- inputs keys miss
    "dataframe_query_at_variable": {
        EDIT: "after thr changes, df.query('a > @thr') is restored with the old threshold",
    },
    "dir_listing": {
        EDIT: "after x2 is added, the dir() cell is restored with ['x1']",
    },
    "project_module_imported_inside_a_function": {
        "edit": "after helpers.py changes, compute(5) is restored with the old FACTOR",
    },
    # -- functions inside other values
    "decorator_closure": {
        (*RESTART, *EDIT): "the restored decorated function raises NameError: OFFSET",
        "status": "after the edit status says the decorated function's call runs; it is restored",
    },
    "registry_of_functions": {
        (*RESTART, *EDIT): "the function in the restored registry raises NameError: PREFIX",
    },
    "dict_of_functions": {
        (*RESTART, *EDIT): "the lambdas in the restored dict raise NameError: STEP",
    },
    # -- cells re-run because of a value that cannot be stored
    "weakref_in_a_replayed_cell": {
        RESTART: "after a restart ref() is dead: the re-run cell's object was replaced by a "
        "stored copy",
    },
    "thread_in_a_replayed_cell": {
        RESTART: "after a restart the thread waits forever and `results` stays empty",
    },
    # -- Jupyter's output protocol
    "display_handle_updated_from_another_cell": {
        RESTART: "a restored handle.update(...) shows a new display instead of updating the first",
    },
    "clear_output_progress_loop": {
        RESTART: "a restored progress loop shows every step: clear_output is not replayed",
    },
    "underscore_and_out_after_restore": {
        RESTART: "after a restart `_` is a Replayed object: `_ + 1` raises TypeError",
    },
    "log_lines_of_later_cells": {
        (*RESTART, *EDIT): "after a restart the log lines of later cells, the probe's too, do "
        "not show",
    },
    "message_the_cell_sends_on_iopub": {
        (*RESTART, "served"): "a restored cell does not show the message it sent on IOPub itself",
    },
    "os_system_echo": {
        RESTART: "a restored cell does not show what os.system('echo hi') printed",
    },
    "subprocess_run_echo": {
        RESTART: "a restored cell does not show what the child process printed",
    },
    "output_of_c_code": {
        (*RESTART, "served", "edit"): "the ctypes library cannot be restored: a "
        "CacheEntryWarning, its cell runs",
        "status": "status says the ctypes cells are restored; the run runs them",
    },
    # -- found beyond the issue: statements
    "error_after_a_partial_assignment": {
        "status": "status says the cell after the raising one runs; the run restores it",
    },
    # -- in place
    "random_shuffle_in_place": {
        RESTART: "after a restart the global random state is not where the restored shuffle "
        "left it",
    },
    # -- objects
    "dataclass_with_default_factory": {
        (*RESTART, *EDIT): "making an instance of a restored dataclass raises NameError: _thread",
    },
    "cached_property": {
        RESTART: "after a restart the cached_property value is no longer on the instance",
    },
    "classmethod_cache_on_the_class": {
        RESTART: "after a restart Repo._cache is empty",
    },
    "class_list_shared_by_instances": {
        (*RESTART, *EDIT): "after a restart Registry.items is empty",
    },
    "class_made_with_type": {
        RESTART: "after a restart `Dyn.value = 4` is lost: 3",
    },
    "defaultdict_factory_reads_a_global": {
        "edit": "after START changes, counts is restored built with the old default",
    },
    "function_source_after_restore": {
        RESTART: "inspect.getsource of a restored function raises OSError",
    },
    "traceback_through_a_restored_function": {
        (*RESTART, *EDIT): "a traceback through a restored function shows <dynamic-code>, no "
        "source line",
    },
    # -- ambient state
    "seed_set_inside_a_function": {
        RESTART: "after a restart the global random state is not where the restored cells left it",
    },
    "library_draws_from_the_global_rng": {
        EDIT: "after the seed changes, the df.sample(...) cells are restored with the old draws",
        "status": "after the seed edit status says the sampling cells run; the run restores them",
    },
    "monkeypatched_library_function": {
        RESTART: "after a restart statistics.mean is the library's own again",
        "live_edit": "re-running the patch cell recurses in Jupyter (RecursionError); with the "
        "cache the patch was lost at the restart",
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
        "status": "status says the file cell runs; the run restores it",
    },
    "locale_setlocale": {
        RESTART: "after a restart the locale is not set again",
    },
    "decimal_context_precision": {
        RESTART: "after a restart the decimal precision is back to 28",
    },
    "numpy_seterr": {
        RESTART: "after a restart np.seterr(divide='raise') is lost",
    },
    "pandas_options_attribute": {
        RESTART: "after a restart display.precision is back to 6",
    },
    "module_injected_into_sys_modules": {
        RESTART: "`import fake` cannot be restored: a CacheEntryWarning, its cell runs",
        EDIT: "after fake.VALUE changes, v is restored as 1",
        "status": "status says the `import fake` cell is restored; the run runs it",
    },
    "environ_read_by_a_child_process": {
        RESTART: "after a restart os.environ['GREETING'] is not set",
    },
    "environ_read_by_a_project_module_on_import": {
        (*RESTART, "live_edit"): "after a restart settings.MODE is 'dev': APP_MODE was not set "
        "when it was imported",
        "edit": "after APP_MODE changes, mode is restored as 'prod'",
    },
    "atexit_handler_registered": {
        RESTART: "after a restart the atexit handler is not registered",
    },
    # -- files and imports
    "file_written_then_read": {
        EDIT: "after seed changes the file is rewritten, but the reading cell is restored with "
        "the old numbers",
        "status": "status says the file cells run; the run restores them",
    },
    "pickle_dump_then_load": {
        "status": "status says the pickle cells run; the run restores them",
    },
    "data_file_read_without_a_tag": {
        EDIT: "after data.csv changes, the reading cell is restored with the old rows",
        "status": "status says the reading cells run; the run restores them",
    },
    "data_file_read_with_a_depends_tag": {
        "status": "status says the depends: cell runs; the run restores it",
    },
    "file_handle_kept_open": {
        (*RESTART, *EDIT): "after a restart run.log is empty: the open() cell truncates it again, "
        "the write is restored without writing",
        "status": "status says the file cells run; the run restores them",
    },
    "temporary_directory_object": {
        "interactive": "after a restart the restored path is in the temporary directory the "
        "shut-down kernel deleted",
        "status": "status says the cells run; the run restores them",
    },
    "sqlite_in_memory_database": {
        (*RESTART, *EDIT): "after a restart the in-memory database has no table t "
        "(OperationalError)",
    },
    "importlib_import_module_by_name": {
        "edit": "after tools.py changes, mod.value() is restored with the old result",
    },
    # -- what is shown
    "capture_cell_magic": {
        "live_edit": "after the %%capture cell is edited, the printing cell is restored with "
        "the old text",
        "status": "status says the %%capture cells run; the run restores them",
    },
    "shell_output_captured": {
        "status": "status says the cell reading the ! output runs; the run restores it",
    },
    "matplotlib_figure_built_over_cells": {
        EDIT: "after the plot is edited, the `fig` cell is restored as text, without its image",
    },
}


def known_failure(name: str, way: Way) -> str | None:
    """What goes wrong with pattern ``name`` in ``way`` today, if anything."""
    for ways, reason in KNOWN.get(name, {}).items():
        if way == ways or (isinstance(ways, tuple) and way in ways):
            return reason
    return None
