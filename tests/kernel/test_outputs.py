"""Outputs in a plain in-process shell (terminal IPython), where no kernel sends IOPub messages:
the recording tees the streams and wraps the display publisher and the displayhook."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.kernel.conftest import Session


@pytest.fixture
def notebook_logger() -> Iterator[str]:
    name = "nbcellar-test-notebook"
    yield name
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def test_results_after_a_restore_are_the_values_not_stand_ins(session: Session) -> None:
    cells = ["table = [1, 2]\ntable", "table + [3]"]
    first = session.run_all(cells)
    session.start()
    again = session.run_all(cells)
    assert [r.outcome.status for r in again if r.outcome] == ["restored", "restored"]
    assert [r.stdout for r in again] == [r.stdout for r in first]
    check = session.run("(_ + [0], __ is table, _ is Out[max(Out)])")
    assert check.result == "([1, 2, 3, 0], True, True)"


def test_a_log_handler_made_in_a_recorded_cell_writes_into_the_cell_running_now(
    session: Session, notebook_logger: str
) -> None:
    cells = [
        f"import logging, sys\nlog = logging.getLogger({notebook_logger!r})\n"
        "log.addHandler(logging.StreamHandler(sys.stdout))",  # sys.stdout: the recording's tee
        "log.warning('from the second cell')",
    ]
    session.run_all(cells)
    session.start()
    again = session.run_all(cells)
    assert again[1].outcome is not None
    assert again[1].outcome.status == "restored"
    assert again[1].stdout == "from the second cell\n"
