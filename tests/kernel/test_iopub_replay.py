"""A restored cell sends a frontend what the cell sends when it runs, message by message.

Each test runs the same cells in a real kernel without nbcellar, with it (the cells run and are
recorded), and with it again after a restart (the cells are restored), and compares the IOPub
messages of every cell (see tests/kernel/iopub_sessions.py for what is normalised).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kernel.iopub_sessions import (
    CellMessages,
    Comparison,
    normalised,
    statuses,
    three_ways,
)

pytestmark = pytest.mark.slow


def assert_same_messages(runs: Comparison, restored: list[int] | None = None) -> None:
    plain = normalised(runs.plain)
    assert normalised(runs.first) == plain
    assert normalised(runs.restored) == plain
    expected = restored if restored is not None else list(range(len(runs.plain)))
    got = [n for n, status in enumerate(statuses(runs.restored)) if status == "restored"]
    assert got == expected


def types_of(runs: Comparison, cell: int) -> list[str]:
    return [kind for kind, _ in normalised(runs.restored)[cell]]


def test_a_display_updated_from_another_cell_is_updated_not_shown_again(tmp_path: Path) -> None:
    runs = three_ways(
        tmp_path,
        [
            "from IPython.display import display, update_display\n"
            "h = display('first', display_id=True)\n"
            "display('named', display_id='fixed')",
            "h.update('second')\nupdate_display('renamed', display_id='fixed')",
        ],
    )
    assert_same_messages(runs)
    assert types_of(runs, 1) == ["update_display_data", "update_display_data"]
    # The handle restored names the display its cell showed.
    shown = normalised(runs.restored)
    assert shown[1][0][1]["transient"] == shown[0][0][1]["transient"]


def test_clear_output_is_replayed_where_the_cell_cleared(tmp_path: Path) -> None:
    runs = three_ways(
        tmp_path,
        [
            "from IPython.display import clear_output\n"
            "for step in range(3):\n"
            "    clear_output(wait=True)\n"
            "    print('step', step, flush=True)\n"
            "clear_output()\nprint('done')",
        ],
    )
    assert_same_messages(runs)
    assert types_of(runs, 0).count("clear_output") == 4
    waits = [c["wait"] for k, c in normalised(runs.restored)[0] if k == "clear_output"]
    assert waits == [True, True, True, False]


def test_messages_a_cell_sends_itself_on_iopub_are_replayed(tmp_path: Path) -> None:
    (tmp_path / "progress.py").write_text(
        "from IPython import get_ipython\n\n\n"
        "def report(done):\n"
        "    kernel = get_ipython().kernel\n"
        "    kernel.session.send(kernel.iopub_socket, 'progress_report', {'done': done},\n"
        "                        parent=kernel.get_parent(), metadata={'unit': 'fraction'})\n"
    )
    runs = three_ways(tmp_path, ["import progress\nprogress.report(0.5)\nprint('sent')"])
    assert_same_messages(runs)
    assert normalised(runs.restored)[0][0] == ("progress_report", {"done": 0.5})
    assert runs.restored[0].messages[0]["metadata"] == {"unit": "fraction"}


def test_a_cell_opening_a_comm_runs_again_rather_than_replay_a_dead_one(tmp_path: Path) -> None:
    runs = three_ways(
        tmp_path,
        [
            "from comm import create_comm\n"
            "channel = create_comm(target_name='nbcellar-test', data={'hello': 1})",
            "channel.send({'more': 2})",
        ],
    )
    assert_same_messages(runs, restored=[])
    assert types_of(runs, 0) == ["comm_open"]
    assert types_of(runs, 1) == ["comm_msg"]


def test_underscore_out_and_numbered_results_hold_the_restored_values(tmp_path: Path) -> None:
    check = "print(__ + [0], ___ is table, Out[1] is table, _2 is table, Out[3], _3 is __, dict(_))"
    runs = three_ways(
        tmp_path,
        [
            "table = [1, 2]\ntable",  # the result is a variable the cell wrote
            "table",  # ... or one it only read
            "table + [3]",  # a fresh value
            "import collections\ncollections.Counter('aab')",
            check,
        ],
    )
    assert_same_messages(runs, restored=[0, 1, 2, 3])
    assert normalised(runs.restored)[4] == [
        ("stream", {"name": "stdout",
                    "text": "[1, 2, 3, 0] True True True [1, 2, 3] True {'a': 2, 'b': 1}\n"})
    ]  # fmt: skip


def test_a_result_that_cannot_be_stored_makes_a_restore_run_the_cell_for_it(
    tmp_path: Path,
) -> None:
    runs = three_ways(
        tmp_path,
        ["items = [1, 2, 3]\n(i * 2 for i in items)", "print(list(_), items)"],
    )
    # The generator cannot be pickled: the cell runs again, its variables come from the store.
    assert_same_messages(runs, restored=[0])
    assert normalised(runs.restored)[1] == [
        ("stream", {"name": "stdout", "text": "[2, 4, 6] [1, 2, 3]\n"})
    ]


def test_stdout_and_stderr_keep_their_order(tmp_path: Path) -> None:
    runs = three_ways(
        tmp_path,
        [
            "import sys, time\n"
            "print('one')\nprint('two', file=sys.stderr)\nprint('three')\n"
            "time.sleep(0.5)\n"
            "print('four', file=sys.stderr)",
        ],
    )
    assert statuses(runs.restored) == ["restored"]
    # As the cell's run sent them: each stream's writes until it was flushed in one message.
    assert normalised(runs.restored) == normalised(runs.first)
    assert [c["name"] for _, c in normalised(runs.restored)[0]][-1] == "stderr"
    # (Which of its two streams a kernel flushes first is a race of its own, in any kernel:
    # the plain kernel's are compared stream by stream.)
    assert (
        per_stream(runs.restored)
        == per_stream(runs.plain)
        == {
            "stdout": "one\nthree\n",
            "stderr": "two\nfour\n",
        }
    )


def per_stream(cells: list[CellMessages]) -> dict[str, str]:
    text: dict[str, str] = {}
    for msg in (m for cell in cells for m in cell.messages if m["msg_type"] == "stream"):
        name = msg["content"]["name"]
        text[name] = text.get(name, "") + msg["content"]["text"]
    return text


def test_log_lines_of_a_handler_made_in_an_earlier_cell_stay_with_their_cell(
    tmp_path: Path,
) -> None:
    runs = three_ways(
        tmp_path,
        [
            "import logging\nlogging.basicConfig(format='%(levelname)s %(message)s')\n"
            "log = logging.getLogger('notebook')",
            "log.warning('from the second cell')",
            "log.warning('from the third cell')",
        ],
    )
    assert_same_messages(runs)
    assert normalised(runs.restored)[1] == [
        ("stream", {"name": "stderr", "text": "WARNING from the second cell\n"})
    ]


def test_output_of_child_processes_and_file_descriptors_is_replayed(tmp_path: Path) -> None:
    runs = three_ways(
        tmp_path,
        [
            "import os, subprocess, sys, time\n"
            "subprocess.run([sys.executable, '-c', 'print(\"from a child\")'], check=True)\n"
            "time.sleep(0.3)  # (two descriptors have no order: their readers get the time)\n"
            "os.write(2, b'written to fd 2\\n')\n"
            "time.sleep(0.3)  # (for the plain kernel: its fd reader thread sends in its time)\n"
            "print('from python')",
        ],
    )
    assert_same_messages(runs)
    assert normalised(runs.restored)[0] == [
        ("stream", {"name": "stdout", "text": "from a child\n"}),
        ("stream", {"name": "stderr", "text": "written to fd 2\n"}),
        ("stream", {"name": "stdout", "text": "from python\n"}),
    ]


def test_restored_figures_show_their_image_before_matplotlib_was_imported(
    tmp_path: Path,
) -> None:
    runs = three_ways(
        tmp_path,
        [
            "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 3, 2]);",
            "ax.set_title('a title')\nfig",
            "print(type(_).__name__, _ is fig)",
        ],
    )
    assert_same_messages(runs, restored=[0, 1])
    assert "image/png" in normalised(runs.restored)[0][0][1]["data"]
    assert "image/png" in normalised(runs.restored)[1][0][1]["data"]
    assert normalised(runs.restored)[2][0][1]["text"] == "Figure True\n"
