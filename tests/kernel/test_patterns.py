"""The promise on everyday notebook code: each pattern (see tests/kernel/patterns_*.py) gives,
with the cache, what it gives without it — recorded, re-run after a restart, served without a
kernel, re-run after an upstream edit, and interactively through a restart and an edit, message
by message on IOPub — and ``nbcellar status`` predicts what ``nbcellar run`` does.

What breaks today is listed, as a user sees it, in tests/kernel/patterns_known.py: those tests
are expected failures (strict, so a fix shows as XPASS until its line there is removed). The
scenarios run in background threads, ahead of the tests asking for them (kernels started in
the notebook's folder, one per thread at a time); each test compares results already computed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.kernel.patterns_found import FOUND
from tests.kernel.patterns_known import KNOWN, known_failure
from tests.kernel.patterns_named import NAMED
from tests.patterns_support import (
    SCENARIO_OF,
    SCENARIOS,
    Batch,
    Executed,
    Folder,
    Interactive,
    Kernels,
    Pattern,
    Way,
    differences,
)

pytestmark = pytest.mark.slow

PATTERNS: tuple[Pattern, ...] = (*NAMED, *FOUND)
# Scenarios computed at once: one more than the two cores, as a kernel's start, restart and
# IOPub drain are partly waiting.
WORKERS = 3
TIMINGS = "NBCELLAR_PATTERN_TIMES"  # a file to append "scenario pattern seconds" lines to
assert set(KNOWN) <= {p.name for p in PATTERNS}, "a known failure of no pattern"


# In the default run: the patterns the issue names, in the batch ways; through a live kernel
# only those whose behaviour there differs (Jupyter's output protocol, module reloading). The
# rest (every pattern every way) runs with ``pytest --patterns``.
LIVE_KERNEL = frozenset(
    {
        "display_handle_updated_from_another_cell", "clear_output_progress_loop",
        "underscore_and_out_after_restore", "message_the_cell_sends_on_iopub",
        "stdout_and_stderr_interleaved", "log_lines_of_later_cells", "os_system_echo",
        "subprocess_run_echo", "output_of_c_code", "cell_tagged_raises_exception",
        "matplotlib_figure_without_inline_loaded", "matplotlib_figure_with_inline_loaded",
        "autoreload_after_module_edit", "importlib_reload_after_module_edit",
        "inline_backend_config",
    }
)  # fmt: skip
NAMED_NAMES = frozenset(p.name for p in NAMED)
assert LIVE_KERNEL <= NAMED_NAMES, "a live-kernel pattern of no name"


def in_default_run(case: Pattern, way: Way) -> bool:
    if case.name not in NAMED_NAMES:
        return False
    return way not in ("interactive", "live_edit") or case.name in LIVE_KERNEL


def cases(way: Way) -> list[Any]:
    params = []
    for case in PATTERNS:
        reason = known_failure(case.name, way)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        if not in_default_run(case, way):
            marks.append(pytest.mark.patterns)
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


class Scenarios:
    """Each (scenario, pattern) computed once, in background threads, in its own folder."""

    def __init__(self, kernels: Kernels, base: Path) -> None:
        self.kernels = kernels
        self.base = base
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="nbcellar-pattern")
        self.futures: dict[tuple[str, str], Future[Any]] = {}

    def submit(self, kind: str, case: Pattern) -> Future[Any]:
        key = (kind, case.name)
        if key not in self.futures:
            self.futures[key] = self.pool.submit(self._compute, kind, case)
        return self.futures[key]

    def _compute(self, kind: str, case: Pattern) -> Any:
        from nbcellar.runs.pool import close_thread_loop

        began = time.perf_counter()
        try:
            return SCENARIOS[kind](self.kernels, Folder(self.base / case.name / kind), case)
        finally:
            close_thread_loop()
            timings = os.environ.get(TIMINGS)
            if timings:
                with open(timings, "a") as log:
                    log.write(f"{kind} {case.name} {time.perf_counter() - began:.2f}\n")

    def get(self, kind: str, case: Pattern) -> Any:
        return self.submit(kind, case).result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.kernels.close()


def _way_of(item: pytest.Item) -> Way | None:
    name = getattr(item, "originalname", "")
    way = name.removeprefix("test_")
    return way if way in SCENARIO_OF else None  # type: ignore[return-value]


@pytest.fixture(scope="module")
def scenarios(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenarios]:
    base = tmp_path_factory.mktemp("patterns")
    ipython_dir = base / "ipython"  # no profile of the developer's reaches the kernels
    ipython_dir.mkdir()
    env = dict(os.environ, IPYTHONDIR=str(ipython_dir))
    found = Scenarios(Kernels(base, env), base)
    for item in request.session.items:  # start every selected test's scenario, in test order
        way = _way_of(item)
        callspec = getattr(item, "callspec", None)
        if item.module is not request.module or way is None or callspec is None:
            continue
        found.submit(SCENARIO_OF[way], callspec.params["case"])
    yield found
    found.close()


def check(lines: list[str]) -> None:
    assert not lines, "\n".join(lines)


@pytest.mark.parametrize("case", cases("record"))
def test_record(case: Pattern, scenarios: Scenarios) -> None:
    """The first run with the cache shows what a run without it shows."""
    found: Batch = scenarios.get("batch", case)
    check(differences("first run", found.fresh.shown[: len(case.cells)], found.recorded.shown,
                      "without the cache"))  # fmt: skip


@pytest.mark.parametrize("case", cases("rerun"))
def test_rerun(case: Pattern, scenarios: Scenarios) -> None:
    """After a restart, the cells come back from the cache as a fresh run makes them, and the
    probe finds the kernel in the state a fresh run leaves."""
    found: Batch = scenarios.get("batch", case)
    check(differences("re-run", found.fresh.shown, found.rerun.shown, "without the cache"))


@pytest.mark.parametrize("case", cases("served"))
def test_served(case: Pattern, scenarios: Scenarios) -> None:
    """The notebook without its probe, run again, shows what a fresh run shows (written from
    the store without a kernel when every cell would be restored)."""
    found: Batch = scenarios.get("batch", case)
    how = "served without a kernel" if not found.served.kernel_started else "second run"
    check(differences(how, found.fresh.shown[: len(case.cells)], found.served.shown,
                      "without the cache"))  # fmt: skip


@pytest.mark.parametrize("case", cases("edit"))
def test_edit(case: Pattern, scenarios: Scenarios) -> None:
    """After an upstream edit, the edited notebook with the cache ends as it does fresh."""
    found: Batch = scenarios.get("batch", case)
    check(differences("edited", found.edited_fresh.shown, found.edited.shown,
                      "without the cache"))  # fmt: skip


@pytest.mark.parametrize("case", cases("status"))
def test_status(case: Pattern, scenarios: Scenarios) -> None:
    """``nbcellar status`` says, cell by cell, what the ``nbcellar run`` after it does (cells
    after one that stopped the run are left out: nothing can foresee an error)."""
    found: Batch = scenarios.get("batch", case)
    lines = []
    for label, run in found.cached_runs.items():
        assert run.predicted is not None
        for number, (said, did) in enumerate(zip(run.predicted, run.statuses, strict=True), 1):
            if said != did and did != "not run":
                lines.append(f"{label} cell [{number}]: status said {said}, run {did}")
    check(lines)


def _session_differences(label: str, plain: list[Executed], cached: list[Executed]) -> list[str]:
    lines = differences(label, [e.shown for e in plain], [e.shown for e in cached], "plain")
    lines += differences(label, [e.status for e in plain], [e.status for e in cached], "plain")
    return lines


@pytest.mark.parametrize("case", cases("interactive"))
def test_interactive(case: Pattern, scenarios: Scenarios) -> None:
    """In a kernel with ``%load_ext nbcellar``, run all, restart, run all: every cell sends on
    IOPub what it sends in a kernel without nbcellar, before and after the restart."""
    found: Interactive = scenarios.get("interactive", case)
    count = len(case.cells) + 1
    check(
        _session_differences("before the restart", found.plain[:count], found.first)
        + _session_differences("after the restart", found.plain[:count], found.restarted[:count])
    )


@pytest.mark.parametrize("case", cases("live_edit"))
def test_live_edit(case: Pattern, scenarios: Scenarios) -> None:
    """Then the edit, and the cells from the edited one on run again in the same kernel."""
    found: Interactive = scenarios.get("interactive", case)
    count = len(case.cells) + 1
    check(_session_differences("after the edit", found.plain[count:], found.restarted[count:]))
