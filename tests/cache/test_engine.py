"""The cache's promise on plain dicts: a restored cell leaves what running it would leave."""

from __future__ import annotations

import pytest

from tests.cache.conftest import DictKernel


def test_an_unchanged_notebook_is_restored_after_a_restart(kernel: DictKernel) -> None:
    cells = ["x = [1, 2]", "y = sum(x)\nprint('sum', y)", "x.append(y)"]
    first = kernel.run_all(cells)
    before = kernel.values()
    kernel.restart()
    again = kernel.run_all(cells)
    assert kernel.statuses == ["restored"] * 3
    assert again == first
    assert kernel.values() == before == {"x": [1, 2, 3], "y": 3}


@pytest.mark.parametrize(
    ("setup", "cell", "probe"),
    [
        ("a = [1]", "a += [4]", "a"),
        ("a = {'k': 1}", "a |= {'j': 2}", "a"),
        ("class Box:\n    n = 0\nb = Box()", "b.n += 1\nb = b", "b.n"),
        ("def grow(xs):\n    xs.append(9)\n    return xs\nxs = [0]", "xs = grow(xs)", "xs"),
    ],
)
def test_a_value_changed_in_place_and_bound_again_is_restored_changed(
    kernel: DictKernel, setup: str, cell: str, probe: str
) -> None:
    kernel.run_all([setup, cell])
    expected = eval(probe, kernel.ns)
    kernel.restart()
    kernel.run_all([setup, cell])
    assert kernel.statuses == ["restored", "restored"]
    assert eval(probe, kernel.ns) == expected


def test_an_alias_of_a_value_changed_and_bound_again_changes_with_it(kernel: DictKernel) -> None:
    cells = ["a = [1]\nb = a", "a += [4]"]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["restored", "restored"]
    assert kernel.ns["b"] is kernel.ns["a"]
    assert kernel.ns["b"] == [1, 4]


def test_an_edit_runs_exactly_the_cells_that_read_what_it_changed(kernel: DictKernel) -> None:
    cells = ["a = 1\nb = 2", "c = a * 10", "d = b * 10", "e = c + d"]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(["a = 5\nb = 2", *cells[1:]])
    assert kernel.statuses == ["ran", "ran", "restored", "ran"]
    assert kernel.ns["e"] == 70


def test_a_cell_producing_the_same_value_again_stops_the_change_there(kernel: DictKernel) -> None:
    kernel.run_all(["a = 1", "b = a > 0", "c = [b] * 3"])
    kernel.restart()
    kernel.run_all(["a = 2", "b = a > 0", "c = [b] * 3"])
    assert kernel.statuses == ["ran", "ran", "restored"]


def test_a_miss_says_which_input_changed(kernel: DictKernel) -> None:
    kernel.run_all(["a = 1", "b = a + 1"])
    kernel.restart()
    kernel.run("a = 2")
    plan = kernel.cache.plan("b = a + 1", (), kernel.ns)
    assert plan.action == "run"
    assert plan.reason == "input a changed"


def test_a_name_bound_to_itself_keeps_the_objects_it_shares_as_they_are(
    kernel: DictKernel,
) -> None:
    # Recorded where l1's object was also l0's; restored where they are apart: still apart.
    kernel.run_all(["l0 = [0]\nl1 = l0", "l1 = l1"])
    kernel.restart()
    kernel.run_all(["l0 = [0]\nl1 = [0]", "l1 = l1"])
    assert kernel.ns["l0"] is not kernel.ns["l1"]
    assert kernel.ns["l1"] == [0]


def test_a_cell_run_again_for_a_value_it_cannot_store_keeps_what_it_made(
    kernel: DictKernel,
) -> None:
    cells = [
        "import weakref\nclass Node:\n    pass\nnode = Node()\nref = weakref.ref(node)",
        "alive = ref() is node",
    ]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses[0] == "restored"  # by running it again
    assert kernel.ns["ref"]() is kernel.ns["node"]  # not a stored copy beside a dead reference
    assert kernel.ns["alive"] is True


def test_a_name_bound_again_to_an_object_a_container_holds_stays_held(
    kernel: DictKernel,
) -> None:
    cells = ["l1 = [0]\nd0 = {}", "d0['l'] = l1", "l1 = l1"]
    kernel.run_all(cells)
    kernel.restart()
    kernel.run_all(cells)
    assert kernel.statuses == ["restored"] * 3
    assert kernel.ns["d0"]["l"] is kernel.ns["l1"]
