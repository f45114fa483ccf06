"""The extension in an in-process IPython shell: restore after restart, edits, outputs, tags."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np

from tests.edits import edit_source
from tests.kernel.conftest import Session

NOTEBOOK = [
    "import numpy as np",
    "data = np.arange(10.0)\nprint('made data')",
    "total = float(data.sum())\ntotal",
    "squares = data ** 2\nsquares[:3]",
]


def statuses(session: Session) -> list[str]:
    return [r.outcome.status if r.outcome else "-" for r in session.runs]


def test_rerun_after_restart_restores_every_cell_with_the_same_outputs(session: Session) -> None:
    first = session.run_all(NOTEBOOK)
    assert [r.outcome.status for r in first if r.outcome] == ["ran"] * 4
    session.start()
    again = session.run_all(NOTEBOOK)
    assert [r.outcome.status for r in again if r.outcome] == ["restored"] * 4
    assert [r.stdout for r in again] == [r.stdout for r in first]
    assert [r.result for r in again] == [r.result for r in first]
    np.testing.assert_array_equal(session.ns["squares"], np.arange(10.0) ** 2)
    assert session.ns["total"] == 45.0


def test_editing_a_cell_reruns_it_and_its_dependants_only(session: Session) -> None:
    session.run_all(NOTEBOOK)
    session.start()
    edited = [*NOTEBOOK]
    edited[1] = "data = np.arange(5.0)\nprint('made data')"
    runs = session.run_all(edited)
    assert [r.outcome.status for r in runs if r.outcome] == ["restored", "ran", "ran", "ran"]
    assert session.ns["total"] == 10.0


def test_comment_and_formatting_changes_still_restore(session: Session) -> None:
    session.run_all(NOTEBOOK)
    session.start()
    cosmetic = [*NOTEBOOK]
    cosmetic[2] = "# the sum\ntotal = float( data.sum() )\ntotal"
    runs = session.run_all(cosmetic)
    assert all(r.outcome and r.outcome.status == "restored" for r in runs)


def test_restored_cell_reports_time_saved(session: Session) -> None:
    session.run("import time\ntime.sleep(0.3)\nslow = 1")
    session.start()
    run = session.run("import time\ntime.sleep(0.3)\nslow = 1")
    assert run.outcome is not None
    assert run.outcome.status == "restored"
    assert run.outcome.saved_seconds >= 0.3


def test_mutation_in_place_is_recorded_and_restored(session: Session) -> None:
    cells = ["items = [3, 1, 2]", "items.sort()", "first = items[0]"]
    runs = session.run_all(cells)
    assert runs[1].outcome is not None
    assert runs[1].outcome.mutated == ("items",)
    session.start()
    session.run_all(cells)
    assert session.ns["items"] == [1, 2, 3]
    assert session.ns["first"] == 1


def test_cell_that_raises_is_not_cached(session: Session) -> None:
    session.run("x = 1")
    failing = session.run("y = x + 1\nraise ValueError('no')")
    assert not failing.success
    assert failing.outcome is not None
    assert failing.outcome.status == "error"
    session.start()
    session.run("x = 1")
    again = session.run("y = x + 1\nraise ValueError('no')")
    assert again.outcome is not None
    assert again.outcome.status == "error"


def test_nocache_and_refresh_tags(session: Session) -> None:
    session.run("import random\nvalue = random.random()", tags=["nocache"])
    session.start()
    again = session.run("import random\nvalue = random.random()", tags=["nocache"])
    assert again.outcome is not None
    assert again.outcome.status == "ran"
    session.run("n = 1")
    refreshed = session.run("n = 1", tags=["refresh"])
    assert refreshed.outcome is not None
    assert refreshed.outcome.status == "ran"


def test_comment_directive_works_like_a_tag(session: Session) -> None:
    session.run("# nbcellar: nocache\nstamp = 1")
    session.start()
    again = session.run("# nbcellar: nocache\nstamp = 1")
    assert again.outcome is not None
    assert again.outcome.status == "ran"


def test_data_file_edited_between_runs(session: Session) -> None:
    data = session.project / "data.csv"
    data.write_text("1\n2\n")
    cell = "with open('data.csv') as handle:\n    rows = handle.read().split()"
    session.run(cell, tags=["depends:data.csv"])
    session.start()
    assert session.run(cell, tags=["depends:data.csv"]).outcome.status == "restored"  # type: ignore[union-attr]
    time.sleep(0.01)
    data.write_text("1\n2\n3\n")
    session.start()
    run = session.run(cell, tags=["depends:data.csv"])
    assert run.outcome is not None
    assert run.outcome.status == "ran"
    assert session.ns["rows"] == ["1", "2", "3"]


def test_project_module_edited_between_runs(session: Session) -> None:
    module = session.project / "helpers_mod.py"
    module.write_text("def double(v):\n    return v * 2\n")
    cells = ["from helpers_mod import double", "out = double(21)"]
    session.run_all(cells)
    session.start()
    assert statuses(session)[-2:] == ["ran", "ran"]
    session.runs.clear()
    session.run_all(cells)
    assert statuses(session) == ["restored", "restored"]
    edit_source(module, "def double(v):\n    return v * 3\n")
    import sys

    sys.modules.pop("helpers_mod", None)
    session.start()
    session.runs.clear()
    session.run_all(cells)
    assert statuses(session) == ["ran", "ran"]
    assert session.ns["out"] == 63


def test_database_connection_cell_reruns_while_the_query_stays_cached(session: Session) -> None:
    db = session.project / "shop.db"
    with sqlite3.connect(db) as setup:
        setup.execute("CREATE TABLE sales (amount REAL)")
        setup.executemany("INSERT INTO sales VALUES (?)", [(1.0,), (2.5,)])
    cells = [
        "import sqlite3\nconn = sqlite3.connect('shop.db')",
        "import time\ntime.sleep(0.2)\ntotal = conn.execute('SELECT SUM(amount) FROM sales')"
        ".fetchone()[0]",
        "report = f'total {total}'",
    ]
    session.run_all(cells)
    session.start()
    session.runs.clear()
    session.run_all(cells)
    # The connection cannot be stored: its cell runs again; the query is restored, not re-run.
    assert statuses(session) == ["restored", "restored", "restored"]
    assert session.runs[0].outcome is not None
    assert session.runs[0].outcome.seconds > 0  # really executed
    assert session.runs[1].outcome is not None
    assert session.runs[1].outcome.seconds == 0.0
    assert session.ns["report"] == "total 3.5"
    assert session.ns["conn"].execute("SELECT COUNT(*) FROM sales").fetchone()[0] == 2


def test_corrupted_entry_is_a_miss_with_a_warning(session: Session) -> None:
    import warnings

    session.run("import numpy as np")
    session.run("big = np.arange(300_000.0)")
    session.extension.flush()  # type: ignore[union-attr]
    store = session.extension.cache.store  # type: ignore[union-attr]
    for key in store.blobs.iter_keys():
        path = store.blobs.path(key)
        if path.stat().st_size > 1_000_000:
            with open(path, "r+b") as handle:
                handle.seek(100)
                handle.write(b"\xff\xff")
    session.start()
    session.run("import numpy as np")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = session.run("big = np.arange(300_000.0)")
    assert run.outcome is not None
    assert run.outcome.status == "ran"
    assert any("unusable" in str(w.message) for w in caught)
    assert float(session.ns["big"][-1]) == 299_999.0


def test_outputs_replayed_in_order_with_displays(session: Session) -> None:
    cell = (
        "from IPython.display import display, HTML\n"
        "print('before')\ndisplay(HTML('<b>bold</b>'))\nprint('after')\n42"
    )
    first = session.run(cell)
    session.start()
    again = session.run(cell)
    assert again.outcome is not None
    assert again.outcome.status == "restored"
    assert again.stdout == first.stdout
    assert again.stdout.startswith("before\nafter\n")
    assert again.displays == first.displays
    assert again.result == first.result == "42"


def test_unloading_turns_caching_off(session: Session, tmp_path: Path) -> None:
    assert session.extension is not None
    session.run("x = 0")
    root = session.extension.cache.store.root
    session.extension.unregister()
    session.extension = None
    run = session.run("x = 1")
    assert run.outcome is None
    assert not hasattr(session.shell, "nbcellar")
    # and it let go of the store (%load_ext opens it again): no index file is held open
    held = [str(fd.readlink()) for fd in Path("/proc/self/fd").iterdir() if fd.is_symlink()]
    assert not [target for target in held if target.startswith(str(root))]


def test_restored_functions_and_methods_read_the_live_namespace(session: Session) -> None:
    cells = [
        "scale = 2",
        "def scaled(v):\n    return v * scale\n"
        "class Model:\n    def predict(self, v):\n        return v + scale\n"
        "    @staticmethod\n    def twice(v):\n        return 2 * v * scale",
    ]
    session.run_all(cells)
    session.start()
    session.run_all(cells)
    session.run("scale = 10")
    assert session.ns["scaled"](1) == 10
    assert session.ns["Model"]().predict(1) == 11
    assert session.ns["Model"].twice(1) == 20


def test_alias_made_by_a_restored_cell_is_the_live_object(session: Session) -> None:
    cells = ["a = [1]", "b = a", "b.append(2)"]
    session.run_all(cells)
    session.start()
    session.run_all(cells)
    assert session.ns["a"] is session.ns["b"]
    assert session.ns["a"] == [1, 2]


def test_a_restored_value_holding_other_variables_holds_the_live_objects(session: Session) -> None:
    # Arrays and objects of a class: referred to by name through the pickler's reducer hook;
    # with a list among them, through persistent ids.
    cells = [
        "import numpy as np\nclass Box:\n    pass\nbig = np.arange(10.0)\nbox = Box()\nitems = [1]",
        "pair = {'data': big, 'box': box}\nmixed = (items, big)",
    ]
    session.run_all(cells)
    session.start()
    again = session.run_all(cells)
    assert [r.outcome.status for r in again if r.outcome] == ["restored"] * 2
    ns = session.ns
    assert ns["pair"]["data"] is ns["big"]
    assert ns["pair"]["box"] is ns["box"]
    assert ns["mixed"][0] is ns["items"]
    assert ns["mixed"][1] is ns["big"]


def restarted(session: Session, cells: list[str]) -> list[str]:
    """Run ``cells``, restart, run them again: the statuses of the second run."""
    session.run_all(cells)
    session.start()
    session.runs.clear()
    return [r.outcome.status if r.outcome else "-" for r in session.run_all(cells)]


def test_a_change_made_through_a_container_reaches_the_variable_inside_it(
    session: Session,
) -> None:
    cells = ["big = [1, 2]", "pair = {'data': big}", "pair['data'][0] = 99", "seen = big[0]"]
    assert restarted(session, cells) == ["restored"] * 4
    ns = session.ns
    assert ns["pair"]["data"] is ns["big"]
    assert ns["big"] == [99, 2]
    assert ns["seen"] == 99


def test_a_change_to_a_variable_reaches_the_containers_holding_it(session: Session) -> None:
    cells = [
        "import numpy as np\nbig = [1, 2]\narr = np.zeros(4)",
        "pair = {'data': big}\nview = arr[:2]",
        "big[0] = 5\narr[0] = 7.0",
        "seen = (pair['data'][0], float(view[0]))",
    ]
    assert restarted(session, cells) == ["restored"] * 4
    ns = session.ns
    assert ns["pair"]["data"] is ns["big"]
    assert ns["seen"] == (5, 7.0)
    ns["arr"][1] = 3.0  # the view still looks at the array's memory
    assert ns["view"][1] == 3.0


def test_a_variable_held_by_a_value_the_cell_changes_stays_that_variable(
    session: Session,
) -> None:
    # The cell changes `pair` only; `other`, inside it, is restored as the live variable.
    cells = ["other = [0]", "pair = {'o': other}", "pair['x'] = 1", "other.append(1)"]
    assert restarted(session, cells) == ["restored"] * 4
    assert session.ns["pair"]["o"] is session.ns["other"]
    assert session.ns["pair"] == {"o": [0, 1], "x": 1}


def test_swapping_a_held_variable_for_an_equal_one_is_a_change(session: Session) -> None:
    cells = ["a = [0]\nb = [0]\nd = {}", "d['x'] = a", "d['x'] = b", "b.append(1)"]
    assert restarted(session, cells) == ["restored"] * 4
    assert session.ns["d"]["x"] is session.ns["b"]
    assert session.ns["d"] == {"x": [0, 1]}


def test_a_name_bound_to_an_object_inside_another_stays_inside_it(session: Session) -> None:
    cells = ["d = {'inner': [1]}", "x = d['inner']", "x.append(2)", "seen = list(d['inner'])"]
    assert restarted(session, cells) == ["restored"] * 4
    assert session.ns["x"] is session.ns["d"]["inner"]
    assert session.ns["seen"] == [1, 2]


def test_a_fitted_pipeline_step_is_the_fitted_variable(session: Session) -> None:
    cells = [
        "import numpy as np\nfrom sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import StandardScaler\n"
        "from sklearn.linear_model import Ridge\n"
        "X = np.arange(20.0).reshape(10, 2)\ny = X.sum(axis=1)",
        "scaler = StandardScaler()\npipe = make_pipeline(scaler, Ridge())",
        "pipe.fit(X, y)",
        "means = scaler.mean_.tolist()",
    ]
    assert restarted(session, cells) == ["restored"] * 4
    ns = session.ns
    assert ns["pipe"].steps[0][1] is ns["scaler"]
    assert ns["scaler"].mean_.tolist() == ns["means"] == [9.0, 10.0]  # fitted, as in a run


def test_names_bound_through_globals_are_caught_at_run_time(session: Session) -> None:
    cells = ["for i in range(3):\n    globals()[f'v{i}'] = i * 10", "total = v0 + v1 + v2"]
    first = session.run_all(cells)
    assert first[0].outcome is not None
    assert set(first[0].outcome.written) >= {"v0", "v1", "v2", "i"}
    session.start()
    again = session.run_all(cells)
    assert [r.outcome.status for r in again if r.outcome] == ["restored", "restored"]
    assert session.ns["total"] == 30
