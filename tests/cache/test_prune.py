"""Pruning keeps each cell's latest entry (or what is recent) and gives the rest back."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from nbcellar.cache.entries import KIND
from nbcellar.cache.prune import prune
from nbcellar.cli.main import cli
from tests.cache.conftest import DictKernel

BIG = "import numpy as np\nbig = np.arange(1_000_000) * n"


def entries(kernel: DictKernel) -> int:
    return len(kernel.store.list_records(KIND))


def test_superseded_entries_go_and_the_latest_stay_restored(kernel: DictKernel) -> None:
    kernel.run_all(["n = 1", BIG])
    kernel.restart()
    kernel.run_all(["n = 2", BIG])  # the second cell's first entry is superseded
    kernel.store.flush()
    assert entries(kernel) == 4
    before = kernel.store.info().bytes_on_disk
    report = prune(kernel.store, superseded=True)
    freed = kernel.store.gc()
    assert (report.entries, report.kept) == (1, 3)
    assert freed.freed_bytes > 7_000_000  # the first run's array
    assert kernel.store.info().bytes_on_disk < before
    kernel.restart()
    kernel.run_all(["n = 2", BIG])
    assert kernel.statuses == ["restored", "restored"]
    assert int(kernel.ns["big"][-1]) == 2 * 999_999
    kernel.restart()
    kernel.run_all(["n = 1", BIG])  # its entry was forgotten: it runs, and is right
    assert kernel.statuses == ["restored", "ran"]
    assert int(kernel.ns["big"][-1]) == 999_999


def test_what_a_refresh_replaced_goes(kernel: DictKernel, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel.run("import numpy as np\nbig = np.ones(1_000_000)")
    kernel.run("import numpy as np\nbig = np.ones(1_000_000)", ("refresh",))
    kernel.store.flush()
    monkeypatch.setattr(time, "time", lambda: 1e12)  # (ten minutes on: no writer is at it)
    report = prune(kernel.store, superseded=True)
    monkeypatch.undo()
    assert (report.entries, report.snapshots) == (0, 1)
    assert kernel.store.gc().freed_bytes == 0  # (the same values: the objects are shared)


def test_entries_older_than_an_age_go(kernel: DictKernel) -> None:
    kernel.run_all(["x = 1", "y = x + 1"])
    kernel.store.flush()
    assert prune(kernel.store, older_than=3600).entries == 0
    time.sleep(0.05)
    assert prune(kernel.store, older_than=0.01).entries == 2
    assert entries(kernel) == 0


def test_the_command_prunes_then_collects(kernel: DictKernel) -> None:
    kernel.run_all(["n = 1", BIG])
    kernel.restart()
    kernel.run_all(["n = 2", BIG])
    kernel.store.flush()
    root = str(kernel.store.root)
    result = CliRunner().invoke(cli, ["store", "prune", "--superseded", "--store", root])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("forgot 1 cache entries (kept 3); removed ")
    assert "freed 7.6 MiB" in result.output
    nothing = CliRunner().invoke(cli, ["store", "prune", "--store", root])
    assert nothing.exit_code == 2
    assert nothing.stderr.startswith("nbcellar: error: say what to prune")
